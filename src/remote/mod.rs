//! Remote commands as values: what runs on a host, built by pure functions with every value escaped.
//!
//! A flow never writes shell text. It asks a builder in this module tree for a [`Command`] and hands it to the
//! transport, which runs it (through `sudo -n` when it needs root and the connection is not root). Each builder
//! is tested as exact text, the way kamal tests `lib/kamal/commands/`.

pub mod audit;
pub mod backup;
pub mod facts;
pub mod file;
pub mod gate;
pub mod health;
pub mod host;
pub mod lock;
pub mod maintenance;
pub mod nft;
mod quote;
pub mod restore;
pub mod tls;

pub mod bootstrap;
pub mod sshd;

use std::fmt;

pub use quote::shell_quote;

/// `s` as one shell word, whatever it holds.
pub(in crate::remote) fn q(s: &str) -> String {
    shell_quote(s).into_owned()
}

/// Shell text as it is, for the transport's own tests, which exercise `sh` itself. Flows never use it (the shape
/// check refuses it outside `src/remote/` and `src/transport/`): they ask a builder.
#[doc(hidden)]
pub fn raw(text: impl Into<String>) -> Command {
    Command::script(text)
}

/// One shell word: an option such as `-p` or `--rm` as it is, anything else through [`shell_quote`].
fn word(w: &str) -> String {
    let option = w.starts_with('-')
        && w.len() > 1
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'=');
    if option {
        w.to_owned()
    } else {
        shell_quote(w).into_owned()
    }
}

/// One command for a host's `sh`: its text, and whether it needs root.
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    script: String,
    root: bool,
}

impl Command {
    /// A program and its arguments, each quoted as one shell word.
    pub(in crate::remote) fn argv<I, S>(words: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let script = words
            .into_iter()
            .map(|w| word(w.as_ref()))
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            script,
            root: false,
        }
    }

    /// Shell text written by a builder of this module tree, with every interpolated value already quoted.
    pub(in crate::remote) fn script(text: impl Into<String>) -> Self {
        Self {
            script: text.into(),
            root: false,
        }
    }

    /// The command with `operands` appended, each quoted as one word and never taken for an option.
    #[must_use]
    pub(in crate::remote) fn operands<S: AsRef<str>>(mut self, operands: &[S]) -> Self {
        for o in operands {
            self.script.push(' ');
            self.script.push_str(&shell_quote(o.as_ref()));
        }
        self
    }

    /// Marks the command as one that only root may run.
    #[must_use]
    pub(in crate::remote) fn as_root(mut self) -> Self {
        self.root = true;
        self
    }

    /// Commands run one after the other, each only if the one before succeeded (`a && b`).
    pub(in crate::remote) fn combine(commands: impl IntoIterator<Item = Command>) -> Self {
        let mut root = false;
        let parts: Vec<String> = commands
            .into_iter()
            .map(|c| {
                root |= c.root;
                c.script
            })
            .collect();
        Self {
            script: parts.join(" && "),
            root,
        }
    }

    /// The text the host's `sh` runs.
    pub fn text(&self) -> &str {
        &self.script
    }

    /// Whether only root may run it.
    pub fn needs_root(&self) -> bool {
        self.root
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.script)
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let root = if self.root { " (as root)" } else { "" };
        write!(f, "Command({:?}{root})", self.script)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_quotes_each_word_and_combine_joins_with_and() {
        let mkdir = Command::argv(["mkdir", "-p", "/var/lib/vldeploy/shop"]);
        let write = Command::argv(["cp", "a b", "it's"]).as_root();
        assert_eq!(mkdir.text(), "mkdir -p /var/lib/vldeploy/shop");
        assert_eq!(write.text(), r"cp 'a b' 'it'\''s'");
        let both = Command::combine([mkdir, write]);
        assert_eq!(
            both.text(),
            r"mkdir -p /var/lib/vldeploy/shop && cp 'a b' 'it'\''s'"
        );
        assert!(both.needs_root());
    }

    #[test]
    fn raw_keeps_the_text_as_it_is() {
        let cmd = raw("echo 'a b' | cat");
        assert_eq!(cmd.text(), "echo 'a b' | cat");
        assert!(!cmd.needs_root());
    }
}
