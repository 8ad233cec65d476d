//! A located error message rendered like rustc: `error:`, `--> file:line:col`, the source line, a caret, a help line.

use std::fmt;

/// Where a diagnostic points: a file, a 1-based line and column, and how many characters to underline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub len: usize,
    /// The source line, or `None` where it must not be shown (a secrets file).
    pub snippet: Option<String>,
}

/// One complete error message about a stack file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    pub location: Option<Location>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            location: None,
            help: None,
        }
    }

    #[must_use]
    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        let help = help.into();
        self.help = (!help.is_empty()).then_some(help);
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        let Some(loc) = &self.location else {
            if let Some(help) = &self.help {
                write!(f, "\n  = help: {help}")?;
            }
            return Ok(());
        };
        let number = loc.line.to_string();
        let pad = " ".repeat(number.len());
        write!(f, "\n{pad}--> {}:{}:{}", loc.file, loc.line, loc.col)?;
        if let Some(snippet) = &loc.snippet {
            let snippet = snippet.replace('\t', " ");
            let text = snippet.trim_end();
            write!(f, "\n{pad} |")?;
            if text.is_empty() {
                write!(f, "\n{number} |")?;
            } else {
                write!(f, "\n{number} | {text}")?;
            }
            let width = text.chars().count();
            let start = loc.col.saturating_sub(1);
            let len = if start >= width {
                1
            } else {
                loc.len.clamp(1, width - start)
            };
            write!(f, "\n{pad} | {}{}", " ".repeat(start), "^".repeat(len))?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n{pad} = help: {help}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_rustc() {
        let d = Diagnostic::new("unknown key `imag` in `services.backend`")
            .at(Location {
                file: "stack.yaml".into(),
                line: 12,
                col: 5,
                len: 4,
                snippet: Some("    imag: foo".into()),
            })
            .help("did you mean `image`?");
        assert_eq!(
            d.to_string(),
            "error: unknown key `imag` in `services.backend`\n  --> stack.yaml:12:5\n   |\n12 |     imag: foo\n   |     ^^^^\n   = help: did you mean `image`?"
        );
    }

    #[test]
    fn renders_without_a_snippet_or_location() {
        let d = Diagnostic::new("bad line").at(Location {
            file: "s.env".into(),
            line: 3,
            col: 1,
            len: 1,
            snippet: None,
        });
        assert_eq!(d.to_string(), "error: bad line\n --> s.env:3:1");
        let d = Diagnostic::new("cannot read `x`").help("create it");
        assert_eq!(d.to_string(), "error: cannot read `x`\n  = help: create it");
    }
}
