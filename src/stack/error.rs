//! `StackError`: everything that can be wrong with a stack file, each displayed as a complete diagnostic.

use std::path::PathBuf;

use super::diagnostic::Diagnostic;

/// A stack file that cannot be used. `Display` is the full rendered diagnostic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StackError {
    /// The stack file (or a file it names) cannot be read.
    #[error("{diagnostic}")]
    Unreadable {
        path: PathBuf,
        diagnostic: Box<Diagnostic>,
    },
    /// The file is not valid YAML.
    #[error("{0}")]
    Syntax(Box<Diagnostic>),
    /// The YAML is well formed but the stack it describes is not valid.
    #[error("{0}")]
    Invalid(Box<Diagnostic>),
    /// `--env NAME` names no environment of the stack.
    #[error("{diagnostic}")]
    UnknownEnvironment {
        name: String,
        defined: Vec<String>,
        diagnostic: Box<Diagnostic>,
    },
    /// A `${VAR}` without a default and without a value anywhere.
    #[error("{diagnostic}")]
    UndefinedVariable {
        name: String,
        diagnostic: Box<Diagnostic>,
    },
    /// The environment's `secrets_file` does not exist.
    #[error("{diagnostic}")]
    SecretsFileMissing {
        path: PathBuf,
        diagnostic: Box<Diagnostic>,
    },
}

impl StackError {
    /// The diagnostic behind this error.
    pub fn diagnostic(&self) -> &Diagnostic {
        match self {
            Self::Syntax(d) | Self::Invalid(d) => d,
            Self::Unreadable { diagnostic, .. }
            | Self::UnknownEnvironment { diagnostic, .. }
            | Self::UndefinedVariable { diagnostic, .. }
            | Self::SecretsFileMissing { diagnostic, .. } => diagnostic,
        }
    }
}
