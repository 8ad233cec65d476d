//! `${VAR}` and `${VAR:-default}` templates in string values; `$$` is a literal dollar.

/// One part of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(String),
    Var {
        name: String,
        default: Option<String>,
        /// The reference as written, `${NAME:-x}`, to point at it.
        raw: String,
    },
}

/// A template that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateError {
    pub(crate) message: String,
    pub(crate) help: String,
    /// The text to point at.
    pub(crate) raw: String,
}

/// Splits a string into text and variable references.
pub(crate) fn parse(text: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        literal.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            literal.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                return Err(TemplateError {
                    message: "unterminated `${` in a string".to_owned(),
                    help: "close the reference with `}`, or write `$$` for a literal dollar"
                        .to_owned(),
                    raw: "${".to_owned(),
                });
            };
            let inner = &body[..end];
            let raw = format!("${{{inner}}}");
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d.to_owned())),
                None => (inner, None),
            };
            if !is_var_name(name) {
                return Err(TemplateError {
                    message: format!("invalid variable name `{name}` in `{raw}`"),
                    help: "variable names use letters, digits and `_` and do not start with a digit; write `$$` for a literal dollar"
                        .to_owned(),
                    raw,
                });
            }
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Var {
                name: name.to_owned(),
                default,
                raw,
            });
            rest = &body[end + 1..];
        } else {
            literal.push('$');
            rest = after;
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

/// Whether `name` can be a variable: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn var(name: &str, default: Option<&str>, raw: &str) -> Piece {
        Piece::Var {
            name: name.into(),
            default: default.map(Into::into),
            raw: raw.into(),
        }
    }

    #[test]
    fn splits_text_and_references() {
        assert_eq!(
            parse("a${X}b${Y:-d e}$$c$").unwrap(),
            vec![
                Piece::Text("a".into()),
                var("X", None, "${X}"),
                Piece::Text("b".into()),
                var("Y", Some("d e"), "${Y:-d e}"),
                Piece::Text("$c$".into()),
            ]
        );
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse("$${X}").unwrap(), vec![Piece::Text("${X}".into())]);
        assert_eq!(parse("${X:-}").unwrap(), vec![var("X", Some(""), "${X:-}")]);
    }

    #[test]
    fn refuses_bad_references() {
        assert_eq!(
            parse("${X").unwrap_err().message,
            "unterminated `${` in a string"
        );
        assert_eq!(
            parse("${1X}").unwrap_err().message,
            "invalid variable name `1X` in `${1X}`"
        );
        assert!(parse("${}").is_err());
    }
}
