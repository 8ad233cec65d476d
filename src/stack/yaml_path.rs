//! `YamlPath`: where a node sits in the document (`services.nginx.ports[0]`), shared with its parent's path.

use std::fmt;
use std::rc::Rc;

/// A path from the document root, built in constant time from the parent's path and rendered only when a
/// message needs it: a mapping of many keys below a long path costs one step per key, not a copy of the path.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct YamlPath(Option<Rc<Step>>);

#[derive(PartialEq, Eq)]
struct Step {
    parent: YamlPath,
    part: Part,
}

#[derive(PartialEq, Eq)]
enum Part {
    Key(Rc<str>),
    Index(usize),
}

impl YamlPath {
    /// The path of the value of `key` in the mapping at this path.
    pub(crate) fn key(&self, key: Rc<str>) -> Self {
        Self(Some(Rc::new(Step {
            parent: self.clone(),
            part: Part::Key(key),
        })))
    }

    /// The path of item `index` of the list at this path.
    pub(crate) fn index(&self, index: usize) -> Self {
        Self(Some(Rc::new(Step {
            parent: self.clone(),
            part: Part::Index(index),
        })))
    }

    /// The document root.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let mut at = self.0.as_deref();
        while let Some(step) = at {
            parts.push(&step.part);
            at = step.parent.0.as_deref();
        }
        for (i, part) in parts.iter().rev().enumerate() {
            match part {
                Part::Key(key) if i == 0 => write!(f, "{key}")?,
                Part::Key(key) => write!(f, ".{key}")?,
                Part::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl PartialEq<&str> for YamlPath {
    fn eq(&self, other: &&str) -> bool {
        self.to_string() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_keys_with_dots_and_items_with_brackets() {
        let root = YamlPath::default();
        assert!(root.is_empty());
        assert_eq!(root.to_string(), "");
        let ports = root
            .key("services".into())
            .key("nginx".into())
            .key("ports".into());
        assert_eq!(ports.index(0).to_string(), "services.nginx.ports[0]");
        assert_eq!(root.index(2).key("a".into()).to_string(), "[2].a");
        assert!(!ports.is_empty());
    }
}
