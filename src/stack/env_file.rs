//! `KEY=VALUE` files (an environment's `env_file` and `secrets_file`).

use std::collections::BTreeMap;

use super::interpolate::is_var_name;

/// A line of an env file that is not `KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvFileError {
    /// 1-based line.
    pub(crate) line: usize,
    pub(crate) message: String,
}

/// Reads `KEY=VALUE` lines: blank lines and `#` comments are skipped, `export ` is allowed, and a value in
/// matching single or double quotes loses them. Nothing is interpolated. A later line wins.
pub(crate) fn parse(text: &str) -> Result<BTreeMap<String, String>, EnvFileError> {
    let mut vars = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let trimmed = trimmed.strip_prefix("export ").unwrap_or(trimmed);
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(EnvFileError {
                line: i + 1,
                message: "expected `KEY=VALUE`".to_owned(),
            });
        };
        let key = key.trim();
        if !is_var_name(key) {
            return Err(EnvFileError {
                line: i + 1,
                message: format!("invalid variable name `{key}`"),
            });
        }
        let value = value.trim();
        let value = ['"', '\'']
            .iter()
            .find_map(|q| {
                value
                    .strip_prefix(*q)
                    .and_then(|v| v.strip_suffix(*q))
                    .filter(|_| value.len() >= 2)
            })
            .unwrap_or(value);
        vars.insert(key.to_owned(), value.to_owned());
    }
    Ok(vars)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_keys_values_quotes_and_comments() {
        let vars = parse("# c\n\nA=1\nexport B = 'x y'\nC=\"q=r\"\nD=\nA=2\n").unwrap();
        assert_eq!(vars["A"], "2");
        assert_eq!(vars["B"], "x y");
        assert_eq!(vars["C"], "q=r");
        assert_eq!(vars["D"], "");
    }

    #[test]
    fn refuses_lines_without_equals_and_bad_names() {
        assert_eq!(
            parse("A=1\nhunter2\n").unwrap_err(),
            EnvFileError {
                line: 2,
                message: "expected `KEY=VALUE`".into()
            }
        );
        assert_eq!(
            parse("1A=x").unwrap_err().message,
            "invalid variable name `1A`"
        );
    }
}
