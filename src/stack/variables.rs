//! Where `${VAR}` values come from: the process environment, then the secrets file, then the env file.

use std::collections::{BTreeMap, BTreeSet};

use crate::secret::Secret;

/// A variable's value and whether it must be kept secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Value {
    pub(crate) text: String,
    pub(crate) secret: bool,
}

/// The variables one environment sees.
pub(crate) struct Variables<'a> {
    process: &'a dyn Fn(&str) -> Option<String>,
    secrets_file: BTreeMap<String, String>,
    env_file: BTreeMap<String, String>,
    secret_names: BTreeSet<String>,
    /// Names of the files, for "define it in ..." help.
    pub(crate) secrets_file_name: Option<String>,
    pub(crate) env_file_name: Option<String>,
}

impl<'a> Variables<'a> {
    /// Only the process environment: for values read before the environment's files are known.
    pub(crate) fn process(process: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            process,
            secrets_file: BTreeMap::new(),
            env_file: BTreeMap::new(),
            secret_names: BTreeSet::new(),
            secrets_file_name: None,
            env_file_name: None,
        }
    }

    pub(crate) fn with_files(
        process: &'a dyn Fn(&str) -> Option<String>,
        secrets_file: Option<(String, BTreeMap<String, String>)>,
        env_file: Option<(String, BTreeMap<String, String>)>,
        secret_names: BTreeSet<String>,
    ) -> Self {
        let (secrets_file_name, secrets_file) = secrets_file.unzip();
        let (env_file_name, env_file) = env_file.unzip();
        Self {
            process,
            secrets_file: secrets_file.unwrap_or_default(),
            env_file: env_file.unwrap_or_default(),
            secret_names,
            secrets_file_name,
            env_file_name,
        }
    }

    /// A variable is secret when it is named in top-level `secrets` or defined in the secrets file (even if the
    /// process environment overrides its value there).
    fn is_secret(&self, name: &str) -> bool {
        self.secret_names.contains(name) || self.secrets_file.contains_key(name)
    }

    pub(crate) fn get(&self, name: &str) -> Option<Value> {
        let text = (self.process)(name)
            .or_else(|| self.secrets_file.get(name).cloned())
            .or_else(|| self.env_file.get(name).cloned())?;
        Some(Value {
            text,
            secret: self.is_secret(name),
        })
    }

    /// The names of every secret variable: declared in `secrets:` or defined in the secrets file, sorted.
    fn secret_variable_names(&self) -> BTreeSet<&str> {
        self.secret_names
            .iter()
            .chain(self.secrets_file.keys())
            .map(String::as_str)
            .collect()
    }

    /// Every secret value this environment can see, longest first, for scrubbing output.
    pub(crate) fn secret_values(&self) -> Vec<Secret> {
        let mut values: Vec<String> = self
            .secret_variable_names()
            .into_iter()
            .filter_map(|n| self.get(n))
            .map(|v| v.text)
            .filter(|t| !t.is_empty())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.into_iter().map(Secret::new).collect()
    }

    /// Every secret by name, with its value (empty when it is declared but defined nowhere), sorted by name:
    /// what the go-live checklist judges. Values stay wrapped in `Secret`.
    pub(crate) fn named_secrets(&self) -> Vec<(String, Secret)> {
        self.secret_variable_names()
            .into_iter()
            .map(|n| {
                let value = self.get(n).map(|v| v.text).unwrap_or_default();
                (n.to_owned(), Secret::new(value))
            })
            .collect()
    }

    /// Variables defined in the secrets file or env file that the process environment overrides with another
    /// value: `(name, file)`. Values are compared, never returned.
    pub(crate) fn overridden(&self) -> Vec<(String, String)> {
        let files = [
            (&self.secrets_file, &self.secrets_file_name),
            (&self.env_file, &self.env_file_name),
        ];
        let mut out = Vec::new();
        for (vars, file) in files {
            for (name, value) in vars {
                if (self.process)(name).is_some_and(|v| &v != value) {
                    out.push((name.clone(), file.clone().unwrap_or_default()));
                }
            }
        }
        out
    }

    /// Where an undefined variable could be defined, for help lines.
    pub(crate) fn where_to_define(&self, name: &str) -> String {
        let mut places = vec!["the process environment".to_owned()];
        if let Some(f) = &self.secrets_file_name {
            places.push(format!("`{f}` (secrets_file)"));
        }
        if let Some(f) = &self.env_file_name {
            places.push(format!("`{f}` (env_file)"));
        }
        let last = places.pop().unwrap_or_default();
        let places = if places.is_empty() {
            last
        } else {
            format!("{} or {last}", places.join(", "))
        };
        format!("define `{name}` in {places}, or give a default: `${{{name}:-value}}`")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_file_value_the_environment_overrides_is_named_once_with_its_file() {
        let process = |k: &str| match k {
            "A" => Some("other".to_owned()),
            "B" => Some("same".to_owned()),
            _ => None,
        };
        let vars = Variables::with_files(
            &process,
            Some((
                "s.env".into(),
                BTreeMap::from([("A".into(), "s".into()), ("B".into(), "same".into())]),
            )),
            Some(("e.env".into(), BTreeMap::from([("C".into(), "c".into())]))),
            BTreeSet::new(),
        );
        assert_eq!(
            vars.overridden(),
            vec![("A".to_owned(), "s.env".to_owned())]
        );
    }

    #[test]
    fn process_wins_then_secrets_then_env_file() {
        let process = |k: &str| (k == "A").then(|| "proc".to_owned());
        let vars = Variables::with_files(
            &process,
            Some((
                "s.env".into(),
                BTreeMap::from([("A".into(), "s".into()), ("B".into(), "sb".into())]),
            )),
            Some((
                "e.env".into(),
                BTreeMap::from([
                    ("B".into(), "eb".into()),
                    ("C".into(), "ec".into()),
                    ("D".into(), "ed".into()),
                ]),
            )),
            BTreeSet::from(["D".to_owned()]),
        );
        assert_eq!(
            vars.get("A").unwrap(),
            Value {
                text: "proc".into(),
                secret: true
            }
        );
        assert_eq!(
            vars.get("B").unwrap(),
            Value {
                text: "sb".into(),
                secret: true
            }
        );
        assert_eq!(
            vars.get("C").unwrap(),
            Value {
                text: "ec".into(),
                secret: false
            }
        );
        assert_eq!(
            vars.get("D").unwrap(),
            Value {
                text: "ed".into(),
                secret: true
            }
        );
        assert_eq!(vars.get("E"), None);
        let values = vars.secret_values();
        let secrets: Vec<&str> = values.iter().map(Secret::expose).collect();
        assert_eq!(secrets, vec!["proc", "ed", "sb"]);
        assert_eq!(
            vars.where_to_define("X"),
            "define `X` in the process environment, `s.env` (secrets_file) or `e.env` (env_file), or give a default: `${X:-value}`"
        );
    }
}
