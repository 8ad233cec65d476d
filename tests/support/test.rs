//! One test builder: runs the real vldeploy binary and checks its stdout, stderr and exit status.
//!
//! `Test::new().args(["plan"]).stderr("error: …\n").status(1).run()` — exact where the output is stable,
//! `.stdout_has(part)` where a part of it legitimately varies (timings, ids). Variable parts can also be
//! substituted before comparing (`.substitute(temp_dir, "$DIR")`). A mismatch panics with the command, a
//! line diff of expected against actual, and both streams.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::project::{Project, Run, binary};

/// What one stream must show.
#[derive(Debug, Default)]
struct Expect {
    exact: Option<String>,
    has: Vec<String>,
    lacks: Vec<String>,
}

impl Expect {
    /// The problems with `actual`, empty when it is as expected.
    fn check(&self, name: &str, actual: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(exact) = &self.exact
            && exact != actual
        {
            problems.push(format!(
                "{name} differs (- expected, + actual):\n{}",
                diff(exact, actual)
            ));
        }
        for part in &self.has {
            if !actual.contains(part.as_str()) {
                problems.push(format!("{name} lacks {part:?}"));
            }
        }
        for part in &self.lacks {
            if actual.contains(part.as_str()) {
                problems.push(format!("{name} shows what it must not: {part:?}"));
            }
        }
        problems
    }
}

/// A run of the binary, described before it starts.
#[must_use]
pub struct Test<'p> {
    project: Option<&'p Project>,
    dir: Option<PathBuf>,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    clear_env: bool,
    stdin: Option<Vec<u8>>,
    stdout: Expect,
    stderr: Expect,
    status: Option<i32>,
    substitutions: Vec<(String, String)>,
}

impl Default for Test<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'p> Test<'p> {
    /// The binary with no arguments, in the test's working directory, expected to succeed.
    pub fn new() -> Self {
        Self {
            project: None,
            dir: None,
            args: Vec::new(),
            env: Vec::new(),
            clear_env: false,
            stdin: None,
            stdout: Expect::default(),
            stderr: Expect::default(),
            status: Some(0),
            substitutions: Vec::new(),
        }
    }

    /// In `project`'s directory, its transcript recording the run (shown when the test fails).
    pub fn in_project(project: &'p Project) -> Self {
        Self {
            project: Some(project),
            dir: Some(project.path().to_path_buf()),
            ..Self::new()
        }
    }

    /// Runs in `dir`.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.dir = Some(dir.as_ref().to_path_buf());
        self
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, A>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Starts the binary with only the variables given by `.env` (by default it inherits the test's, less
    /// any `VLDEPLOY_*`).
    pub fn env_clear(mut self) -> Self {
        self.clear_env = true;
        self
    }

    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// Stdout must be exactly `text`.
    pub fn stdout(mut self, text: impl Into<String>) -> Self {
        self.stdout.exact = Some(text.into());
        self
    }

    /// Stderr must be exactly `text`.
    pub fn stderr(mut self, text: impl Into<String>) -> Self {
        self.stderr.exact = Some(text.into());
        self
    }

    /// Stdout must contain `part` (for output whose rest varies).
    pub fn stdout_has(mut self, part: impl Into<String>) -> Self {
        self.stdout.has.push(part.into());
        self
    }

    /// Stderr must contain `part` (for output whose rest varies).
    pub fn stderr_has(mut self, part: impl Into<String>) -> Self {
        self.stderr.has.push(part.into());
        self
    }

    pub fn stdout_lacks(mut self, part: impl Into<String>) -> Self {
        self.stdout.lacks.push(part.into());
        self
    }

    pub fn stderr_lacks(mut self, part: impl Into<String>) -> Self {
        self.stderr.lacks.push(part.into());
        self
    }

    /// Neither stream may show `secret`.
    pub fn hides(self, secret: impl Into<String>) -> Self {
        let secret = secret.into();
        self.stdout_lacks(secret.clone()).stderr_lacks(secret)
    }

    /// The exit status the binary must end with (0 unless set).
    pub fn status(mut self, code: i32) -> Self {
        self.status = Some(code);
        self
    }

    /// Any exit status is accepted (the test checks the output only).
    pub fn any_status(mut self) -> Self {
        self.status = None;
        self
    }

    /// `from` is written as `to` in both streams before they are compared (a temporary directory, a port).
    pub fn substitute(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.substitutions.push((from.into(), to.into()));
        self
    }

    /// The command line as a person would type it.
    fn shown(&self) -> String {
        let mut line = String::from("$ vldeploy");
        for a in &self.args {
            let _ = write!(line, " {}", a.to_string_lossy());
        }
        line
    }

    /// Runs the binary, checks every expectation, and returns what it printed (after substitution).
    #[track_caller]
    pub fn run(self) -> Run {
        let mut cmd = Command::new(binary());
        cmd.args(&self.args);
        if self.clear_env {
            cmd.env_clear();
        } else {
            for (k, _) in std::env::vars() {
                if k.starts_with("VLDEPLOY_") {
                    cmd.env_remove(k);
                }
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("vldeploy starts");
        if let Some(input) = &self.stdin {
            let mut pipe = child.stdin.take().expect("piped stdin");
            // The binary may exit before it reads everything: a closed pipe is not the test's failure.
            let _ = pipe.write_all(input);
        }
        let out = child.wait_with_output().expect("vldeploy runs");
        let substitute = |bytes: &[u8]| {
            let mut text = String::from_utf8_lossy(bytes).into_owned();
            for (from, to) in &self.substitutions {
                text = text.replace(from.as_str(), to);
            }
            text
        };
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: substitute(&out.stdout),
            stderr: substitute(&out.stderr),
        };
        let args: Vec<String> = self
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        if let Some(p) = self.project {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            p.record(&args, &run);
        }
        let mut problems = Vec::new();
        if let Some(code) = self.status
            && code != run.code
        {
            problems.push(format!("exit status {} (expected {code})", run.code));
        }
        problems.extend(self.stdout.check("stdout", &run.stdout));
        problems.extend(self.stderr.check("stderr", &run.stderr));
        assert!(
            problems.is_empty(),
            "{}\n{}\n--- stdout\n{}\n--- stderr\n{}\n---",
            self.shown(),
            problems.join("\n"),
            run.stdout,
            run.stderr
        );
        run
    }
}

/// `actual` is exactly `expected`; otherwise a line diff says where they part.
#[track_caller]
pub fn assert_text(actual: &str, expected: &str) {
    assert!(
        actual == expected,
        "the text differs (- expected, + actual):\n{}",
        diff(expected, actual)
    );
}

/// A line diff of `expected` against `actual`: ` ` both, `-` only expected, `+` only actual.
pub fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.split_inclusive('\n').collect();
    let b: Vec<&str> = actual.split_inclusive('\n').collect();
    // The longest common subsequence, by table (outputs here are small).
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, mark: char, text: &str| {
        let shown = text.strip_suffix('\n').unwrap_or(text);
        let end = if text.ends_with('\n') {
            ""
        } else {
            "  (no newline at the end)"
        };
        let _ = writeln!(out, "{mark} {shown}{end}");
    };
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            line(&mut out, ' ', a[i]);
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            line(&mut out, '-', a[i]);
            i += 1;
        } else {
            line(&mut out, '+', b[j]);
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod checks {
    use super::{Test, diff};

    #[test]
    fn the_builder_passes_on_exact_output_and_status() {
        let run = Test::new()
            .arg("--version")
            .stdout(format!("vldeploy {}\n", env!("CARGO_PKG_VERSION")))
            .stderr("")
            .run();
        assert_eq!(run.code, 0);
    }

    #[test]
    #[should_panic(expected = "stdout differs")]
    fn the_builder_fails_on_different_stdout() {
        Test::new()
            .arg("--version")
            .stdout("vldeploy 0.0.0\n")
            .run();
    }

    #[test]
    #[should_panic(expected = "exit status 0 (expected 2)")]
    fn the_builder_fails_on_a_different_status() {
        Test::new().arg("--version").status(2).run();
    }

    #[test]
    #[should_panic(expected = "stderr lacks")]
    fn the_builder_fails_when_a_part_is_missing() {
        Test::new()
            .args(["plan", "--file", "/nonexistent/stack.yaml"])
            .any_status()
            .stderr_has("no such words")
            .run();
    }

    #[test]
    fn a_diff_marks_lines_only_expected_and_only_actual() {
        assert_eq!(
            diff("a\nb\nc\n", "a\nB\nc"),
            "  a\n- b\n- c\n+ B\n+ c  (no newline at the end)\n"
        );
    }
}
