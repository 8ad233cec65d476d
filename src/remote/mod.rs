//! Remote commands as values: what runs on a host, built by pure functions with every value escaped.
//!
//! A flow never writes shell text. It asks a builder in this module tree for a [`Command`] and hands it to the
//! transport, which runs it (through `sudo -n` when it needs root and the connection is not root). Each builder
//! is tested as exact text, the way kamal tests `lib/kamal/commands/`.

pub mod archive_verify;
pub mod audit;
pub mod backup;
pub mod backup_host;
pub mod catalog;
pub mod edge;
pub mod facts;
pub mod file;
pub mod gate;
pub mod health;
pub mod host;
pub mod lock;
pub mod maintenance;
pub mod nft;
pub mod pitr;
mod quote;
pub mod restore;
pub mod root;
pub mod service_spec;
pub mod service_task;
pub mod site;
pub mod tls;

pub mod bootstrap;
pub mod sshd;
pub mod swarm;

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
    /// Calls the root helper's function (`vldeploy_root`), which the transport defines first.
    helper: bool,
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
            helper: false,
        }
    }

    /// Shell text written by a builder of this module tree, with every interpolated value already quoted.
    pub(in crate::remote) fn script(text: impl Into<String>) -> Self {
        Self {
            script: text.into(),
            root: false,
            helper: false,
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
        let mut helper = false;
        let parts: Vec<String> = commands
            .into_iter()
            .map(|c| {
                root |= c.root;
                helper |= c.helper;
                c.script
            })
            .collect();
        Self {
            script: parts.join(" && "),
            root,
            helper,
        }
    }

    /// Marks the command as one that calls the root helper's function.
    #[must_use]
    pub(in crate::remote) fn with_helper(mut self) -> Self {
        self.helper = true;
        self.root = true;
        self
    }

    /// The text the host's `sh` runs.
    pub fn text(&self) -> &str {
        &self.script
    }

    /// Whether only root may run it.
    pub fn needs_root(&self) -> bool {
        self.root
    }

    /// Whether it calls the root helper's function, which must be defined before its text.
    pub fn uses_helper(&self) -> bool {
        self.helper
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
pub(crate) mod tests {
    use super::*;

    /// Asserts that `cmd`'s text parses in `sh` (`sh -n`), naming the command and sh's complaint when it does not.
    #[track_caller]
    pub(crate) fn assert_parses_in_sh(cmd: &Command) {
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", cmd.text()])
            .output()
            .unwrap_or_else(|e| panic!("sh runs: {e}"));
        assert!(
            out.status.success(),
            "{}: {}",
            cmd.text(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

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

    /// Where a source file's tests start (at the start of a line, so never this text itself).
    const TESTS: &str = "\n#[cfg(test)]\n";

    /// The builders of one source file of this module tree: each `pub` or `pub(crate)` function (or method)
    /// whose signature returns `Command`, before the file's tests.
    fn builders(source: &str) -> Vec<String> {
        let code = source.split(TESTS).next().unwrap_or_default();
        let lines: Vec<&str> = code.lines().map(str::trim).collect();
        let mut names = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let Some(rest) = ["pub fn ", "pub(crate) fn "]
                .iter()
                .find_map(|p| line.strip_prefix(p))
            else {
                continue;
            };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let signature: String = lines[i..]
                .iter()
                .take_while(|l| !l.ends_with('{'))
                .chain(lines[i..].iter().find(|l| l.ends_with('{')))
                .copied()
                .collect();
            if signature.contains("-> Command") {
                names.push(name);
            }
        }
        names
    }

    /// Whether `text` calls `name` (as a function, a method or an associated function).
    fn calls(text: &str, name: &str) -> bool {
        text.match_indices(&format!("{name}(")).any(|(at, _)| {
            text[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
        })
    }

    /// Whether one `assert_eq!` of the tests compares the whole `.text()` of a call of `name`: called in the
    /// assertion itself, or bound by a `let` of the same test to the variable whose text it compares.
    fn has_exact_test(tests: &str, name: &str) -> bool {
        tests.split("#[test]\n").any(|test| {
            test.match_indices("assert_eq!(").any(|(at, _)| {
                // The assertion, up to the end of its statement.
                let block = test[at..].split(";\n").next().unwrap_or_default();
                block.match_indices(".text()").any(|(t, _)| {
                    let before = &block[..t];
                    let var: String = before
                        .chars()
                        .rev()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    let bound = !var.is_empty()
                        && test[..at]
                            .split(&format!("let {var} = "))
                            .skip(1)
                            .any(|b| calls(b.split(";\n").next().unwrap_or_default(), name));
                    bound || calls(block, name)
                })
            })
        })
    }

    /// Issue 13's acceptance: every command builder of `src/remote/` has a test asserting its whole text.
    #[test]
    fn every_builder_has_an_exact_text_test() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/remote");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|e| e.unwrap_or_else(|e| panic!("{e}")).path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .collect();
        files.sort();
        let mut seen = Vec::new();
        let mut missing = Vec::new();
        for path in &files {
            let source = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{e}"));
            let tests = source.split(TESTS).nth(1).unwrap_or_default();
            let file = path.file_name().unwrap_or_default().to_string_lossy();
            for name in builders(&source) {
                if !has_exact_test(tests, &name) {
                    missing.push(format!("{file}: {name}"));
                }
                seen.push(format!("{file}: {name}"));
            }
        }
        // The scan must find the builders at all: a few known ones, of each kind.
        for known in [
            "backup.rs: check",
            "bootstrap.rs: facts",
            "nft.rs: arm",
            "nft.rs: observe",
            "sshd.rs: write_and_check",
            "mod.rs: raw",
        ] {
            assert!(
                seen.iter().any(|s| s == known),
                "{known} not found in {seen:?}"
            );
        }
        assert!(
            missing.is_empty(),
            "builders without an exact-text test: {missing:?}"
        );
    }

    #[test]
    fn raw_keeps_the_text_as_it_is() {
        let cmd = raw("echo 'a b' | cat");
        assert_eq!(cmd.text(), "echo 'a b' | cat");
        assert!(!cmd.needs_root());
    }
}
