//! Reads typed values out of located nodes, interpolating `${VAR}` and turning every problem into a diagnostic.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use super::diagnostic::{Diagnostic, Location};
use super::document::{Entry, Kind, Node, Source, Span};
use super::error::StackError;
use super::interpolate::{self, Piece};
use super::model::EnvValue;
use super::suggest;
use super::variables::Variables;
use super::yaml_path::YamlPath;
use crate::secret::Secret;

/// A string value after interpolation, and the first secret variable it used, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Text {
    pub(crate) value: String,
    /// `(name, reference as written)` of a secret variable in the value.
    pub(crate) secret: Option<(String, String)>,
}

/// A problem with the content of a string, found by a format parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) message: String,
    pub(crate) help: String,
}

impl Problem {
    pub(crate) fn new(message: impl Into<String>, help: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            help: help.into(),
        }
    }
}

/// Typed access to the nodes of one stack file, with the variables of one environment.
pub(crate) struct Reader<'a> {
    pub(crate) source: &'a Source,
    pub(crate) vars: &'a Variables<'a>,
    /// Relative paths are relative to this directory (absolute).
    pub(crate) project_dir: &'a Path,
    /// For `~` in paths.
    pub(crate) home: Option<String>,
    /// Bytes that `${VAR}` references have put into values so far, bounded by [`MAX_EXPANDED`].
    pub(crate) expanded: Cell<usize>,
}

/// How many bytes variables may put into the values of one stack file: a few references to a large value
/// must not make a small file cost gigabytes.
pub(crate) const MAX_EXPANDED: usize = 16 << 20;

/// A mapping whose keys were checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Map<'n> {
    pub(crate) node: &'n Node,
    pub(crate) entries: &'n [Entry],
}

impl<'n> Map<'n> {
    pub(crate) fn entry(&self, key: &str) -> Option<&'n Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'n Node> {
        self.entry(key).map(|e| &e.value)
    }
}

/// `` `path` `` or "the top level".
pub(crate) fn place(path: &YamlPath) -> String {
    if path.is_empty() {
        "the top level".to_owned()
    } else {
        format!("`{path}`")
    }
}

/// `` in `path` `` or "at the top level".
pub(crate) fn place_in(path: &YamlPath) -> String {
    if path.is_empty() {
        "at the top level".to_owned()
    } else {
        format!("in `{path}`")
    }
}

impl Reader<'_> {
    pub(crate) fn location(&self, span: Span) -> Location {
        Location {
            file: self.source.name.clone(),
            line: span.mark.line,
            col: span.mark.col + 1,
            len: span.len,
            snippet: self.source.line(span.mark.line).map(str::to_owned),
        }
    }

    pub(crate) fn diagnostic(
        &self,
        span: Span,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::new(message).at(self.location(span)).help(help)
    }

    /// An `Invalid` error pointing at `span`.
    pub(crate) fn error(
        &self,
        span: Span,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> StackError {
        StackError::Invalid(Box::new(self.diagnostic(span, message, help)))
    }

    /// An `Invalid` error pointing at a node.
    pub(crate) fn error_at(
        &self,
        node: &Node,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> StackError {
        self.error(node.span(self.source), message, help)
    }

    fn wrong_type(&self, node: &Node, expected: &str, help: &str) -> StackError {
        self.error_at(
            node,
            format!(
                "expected {expected} for {}, found {}",
                place(&node.path),
                node.describe()
            ),
            help,
        )
    }

    /// A mapping that may only hold `allowed` keys.
    pub(crate) fn map<'n>(&self, node: &'n Node, allowed: &[&str]) -> Result<Map<'n>, StackError> {
        let entries = self.any_map(node)?;
        for entry in entries {
            if !allowed.contains(&entry.key.as_str()) {
                let help = match suggest::did_you_mean(&entry.key, allowed.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "{} accepts {}",
                        place(&entry.parent),
                        suggest::list(allowed.iter().copied())
                    ),
                };
                return Err(self.error(
                    entry.key_span,
                    format!("unknown key `{}` {}", entry.key, place_in(&entry.parent)),
                    help,
                ));
            }
        }
        Ok(Map { node, entries })
    }

    /// A mapping with any keys.
    pub(crate) fn any_map<'n>(&self, node: &'n Node) -> Result<&'n [Entry], StackError> {
        node.as_map().ok_or_else(|| {
            self.wrong_type(
                node,
                "a map",
                "write `key: value` pairs, indented below the key",
            )
        })
    }

    /// A key that must be present.
    pub(crate) fn require<'n>(
        &self,
        map: Map<'n>,
        key: &str,
        help: &str,
    ) -> Result<&'n Node, StackError> {
        map.get(key).ok_or_else(|| {
            self.error(
                map.node.span(self.source),
                format!("missing `{key}` at {}", place(&map.node.path)),
                help,
            )
        })
    }

    pub(crate) fn list<'n>(&self, node: &'n Node) -> Result<&'n [Node], StackError> {
        match &node.kind {
            Kind::Seq(items) => Ok(items),
            _ => Err(self.wrong_type(
                node,
                "a list",
                "write a list as `[a, b]` or as lines starting with `- `",
            )),
        }
    }

    /// A scalar, interpolated; may have used secrets.
    pub(crate) fn text(&self, node: &Node) -> Result<Text, StackError> {
        let raw = match &node.kind {
            Kind::Scalar { value, .. } if !node.is_null() => value,
            Kind::Scalar { .. } => {
                return Err(self.wrong_type(node, "a string", "write a value after the key"));
            }
            _ => {
                return Err(self.wrong_type(
                    node,
                    "a string",
                    "quote the value to write it as text",
                ));
            }
        };
        self.interpolate(node, raw)
    }

    fn interpolate(&self, node: &Node, raw: &str) -> Result<Text, StackError> {
        let pieces = interpolate::parse(raw).map_err(|e| {
            let span = self
                .source
                .find_on_line(node.mark, &e.raw)
                .unwrap_or_else(|| node.span(self.source));
            self.error(
                span,
                format!("{} at {}", e.message, place(&node.path)),
                e.help,
            )
        })?;
        let mut text = Text {
            value: String::new(),
            secret: None,
        };
        for piece in pieces {
            match piece {
                Piece::Text(t) => text.value.push_str(&t),
                Piece::Var { name, default, raw } => match (self.vars.get(&name), default) {
                    (Some(v), _) => {
                        self.expand(node, &raw, v.text.len())?;
                        text.value.push_str(&v.text);
                        if v.secret && text.secret.is_none() {
                            text.secret = Some((name, raw));
                        }
                    }
                    (None, Some(d)) => {
                        self.expand(node, &raw, d.len())?;
                        text.value.push_str(&d);
                    }
                    (None, None) => {
                        let span = self
                            .source
                            .find_on_line(node.mark, &raw)
                            .unwrap_or_else(|| node.span(self.source));
                        let help = self.vars.where_to_define(&name);
                        let diagnostic = self.diagnostic(
                            span,
                            format!("undefined variable `{name}` in {}", place(&node.path)),
                            help,
                        );
                        return Err(StackError::UndefinedVariable {
                            name,
                            diagnostic: Box::new(diagnostic),
                        });
                    }
                },
            }
        }
        Ok(text)
    }

    /// Counts `bytes` put into a value by the reference `raw`; an error past [`MAX_EXPANDED`].
    fn expand(&self, node: &Node, raw: &str, bytes: usize) -> Result<(), StackError> {
        let total = self.expanded.get().saturating_add(bytes);
        self.expanded.set(total);
        if total <= MAX_EXPANDED {
            return Ok(());
        }
        let span = self
            .source
            .find_on_line(node.mark, raw)
            .unwrap_or_else(|| node.span(self.source));
        Err(self.error(
            span,
            format!(
                "variables put more than {} MiB into this stack's values (reached at {})",
                MAX_EXPANDED >> 20,
                place(&node.path)
            ),
            "a stack's values are short: check the value of this variable, or reference it fewer times",
        ))
    }

    /// A string that must not contain secrets.
    pub(crate) fn string(&self, node: &Node) -> Result<String, StackError> {
        let text = self.text(node)?;
        if let Some((name, raw)) = &text.secret {
            let span = self
                .source
                .find_on_line(node.mark, raw)
                .unwrap_or_else(|| node.span(self.source));
            return Err(self.error(
                span,
                format!("secret `{name}` cannot be used in {}", place(&node.path)),
                "secrets may only be used in `env` values and in tls `eab_kid`/`eab_hmac`; use a variable from the env_file here",
            ));
        }
        Ok(text.value)
    }

    /// A string that may contain secrets; secret if it does.
    pub(crate) fn env_value(&self, node: &Node) -> Result<EnvValue, StackError> {
        if matches!(node.kind, Kind::Map(_) | Kind::Seq(_)) || node.is_null() {
            return Err(self.error_at(
                node,
                format!(
                    "an env value must be a string, number or boolean; {} is {}",
                    place(&node.path),
                    node.describe()
                ),
                "quote the value to pass it as text, e.g. `KEY: \"...\"`",
            ));
        }
        let text = self.text(node)?;
        Ok(if text.secret.is_some() {
            EnvValue::Secret(Secret::new(text.value))
        } else {
            EnvValue::Plain(text.value)
        })
    }

    /// A string checked by a format parser; its problems point at the node.
    pub(crate) fn parse<T>(
        &self,
        node: &Node,
        f: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Result<T, StackError> {
        let s = self.string(node)?;
        f(&s).map_err(|p| {
            self.error_at(
                node,
                format!("{} at {}", p.message, place(&node.path)),
                p.help,
            )
        })
    }

    pub(crate) fn boolean(&self, node: &Node) -> Result<bool, StackError> {
        if matches!(node.kind, Kind::Scalar { .. }) && !node.is_null() {
            match self.string(node)?.as_str() {
                "true" | "True" | "TRUE" => return Ok(true),
                "false" | "False" | "FALSE" => return Ok(false),
                _ => {}
            }
        }
        Err(self.wrong_type(node, "`true` or `false`", "write `true` or `false`"))
    }

    /// An unsigned integer in `min..=max`.
    pub(crate) fn integer(
        &self,
        node: &Node,
        what: &str,
        min: u64,
        max: u64,
    ) -> Result<u64, StackError> {
        if !matches!(node.kind, Kind::Scalar { .. }) || node.is_null() {
            return Err(self.wrong_type(
                node,
                &format!("a {what}"),
                &format!("write a whole number from {min} to {max}"),
            ));
        }
        let s = self.string(node)?;
        match s.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            Ok(_) => Err(self.error_at(
                node,
                format!("{what} {s} is out of range at {}", place(&node.path)),
                format!("use a number from {min} to {max}"),
            )),
            Err(_) => Err(self.error_at(
                node,
                format!("expected a {what} for {}, found `{s}`", place(&node.path)),
                format!("write a whole number from {min} to {max}"),
            )),
        }
    }

    pub(crate) fn port(&self, node: &Node) -> Result<u16, StackError> {
        let n = self.integer(node, "port", 1, 65535)?;
        Ok(u16::try_from(n).unwrap_or(u16::MAX))
    }

    pub(crate) fn count(&self, node: &Node) -> Result<u32, StackError> {
        let n = self.integer(node, "count", 0, u64::from(u32::MAX))?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// A list of strings without secrets.
    pub(crate) fn strings(&self, node: &Node) -> Result<Vec<String>, StackError> {
        self.list(node)?.iter().map(|n| self.string(n)).collect()
    }

    /// A path: `~` is the home directory, a relative path is relative to the project directory.
    pub(crate) fn path(&self, node: &Node) -> Result<PathBuf, StackError> {
        let s = self.string(node)?;
        if s.is_empty() {
            return Err(self.error_at(
                node,
                format!("empty path at {}", place(&node.path)),
                "write a file path",
            ));
        }
        let tilde = s.strip_prefix("~/").or_else(|| (s == "~").then_some(""));
        if let Some(rest) = tilde {
            let Some(home) = self.home.as_deref().filter(|h| !h.is_empty()) else {
                return Err(self.error_at(
                    node,
                    format!(
                        "cannot expand `~` at {}: `HOME` is not set",
                        place(&node.path)
                    ),
                    "set `HOME` or write an absolute path",
                ));
            };
            let home = PathBuf::from(home);
            return Ok(if rest.is_empty() {
                home
            } else {
                home.join(rest)
            });
        }
        Ok(self.project_dir.join(s))
    }
}
