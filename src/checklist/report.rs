//! A checklist report: one finding per item (status, evidence, how to fix), as a table or JSON.

use std::fmt::Write as _;

use serde::Serialize;

/// How an item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// The evidence exists but is older than the item's freshness window.
    Stale,
    /// It does not pass, and the operator went ahead with a recorded reason.
    Waived,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "FAIL",
            Self::Stale => "STALE",
            Self::Waived => "waived",
        }
    }
}

/// One item's result. `evidence` never holds a secret's value.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub item: String,
    pub status: Status,
    pub evidence: String,
    /// What to do when it does not pass (empty when it passes).
    pub fix: String,
    /// How long the probe took.
    pub took_ms: u64,
}

impl Finding {
    pub fn pass(item: &str, evidence: impl Into<String>) -> Self {
        Self {
            item: item.to_owned(),
            status: Status::Pass,
            evidence: evidence.into(),
            fix: String::new(),
            took_ms: 0,
        }
    }

    pub fn fail(item: &str, evidence: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            item: item.to_owned(),
            status: Status::Fail,
            evidence: evidence.into(),
            fix: fix.into(),
            took_ms: 0,
        }
    }

    pub fn stale(item: &str, evidence: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status: Status::Stale,
            ..Self::fail(item, evidence, fix)
        }
    }
}

/// Every item of one environment, checked at one time.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub environment: String,
    /// What was checked: the live release, or a staged one.
    pub subject: String,
    pub checked_at: u64,
    pub findings: Vec<Finding>,
}

impl Report {
    /// Every item passes or was waived.
    pub fn passed(&self) -> bool {
        self.findings
            .iter()
            .all(|f| matches!(f.status, Status::Pass | Status::Waived))
    }

    /// The items that hold a release back.
    pub fn blocking(&self) -> Vec<&Finding> {
        self.findings
            .iter()
            .filter(|f| matches!(f.status, Status::Fail | Status::Stale))
            .collect()
    }

    /// The waived items as `item: reason`-style lines, for the audit log.
    pub fn waived(&self) -> Vec<String> {
        self.findings
            .iter()
            .filter(|f| f.status == Status::Waived)
            .map(|f| format!("{}: {}", f.item, f.evidence))
            .collect()
    }

    /// The table: item, status, evidence, and under each item that does not pass, how to fix it.
    pub fn render_human(&self) -> String {
        let width = self
            .findings
            .iter()
            .map(|f| f.item.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "go-live checklist for `{}` ({})",
            self.environment, self.subject
        );
        let _ = writeln!(out, "{:width$}  {:6}  evidence", "item", "status");
        for f in &self.findings {
            let _ = writeln!(
                out,
                "{:width$}  {:6}  {}",
                f.item,
                f.status.label(),
                f.evidence
            );
            if !f.fix.is_empty() && f.status != Status::Pass {
                let _ = writeln!(out, "{:width$}  {:6}  fix: {}", "", "", f.fix);
            }
        }
        let blocking = self.blocking();
        if blocking.is_empty() {
            let _ = writeln!(
                out,
                "all {} items pass{}",
                self.findings.len(),
                if self.waived().is_empty() {
                    ""
                } else {
                    " (some waived)"
                }
            );
        } else {
            let names: Vec<&str> = blocking.iter().map(|f| f.item.as_str()).collect();
            let _ = writeln!(
                out,
                "{} of {} items do not pass: {}",
                blocking.len(),
                self.findings.len(),
                names.join(", ")
            );
        }
        out
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["passed"] = self.passed().into();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(findings: Vec<Finding>) -> Report {
        Report {
            environment: "production".into(),
            subject: "the live release".into(),
            checked_at: 0,
            findings,
        }
    }

    #[test]
    fn a_failing_or_stale_item_fails_the_report_and_a_waived_one_does_not() {
        let pass = Finding::pass("ssl", "ok");
        let fail = Finding::fail("secrets", "POSTGRES_PASSWORD is a default", "set it");
        let stale = Finding::stale("backup", "3 days old", "run a backup");
        assert!(report(vec![pass.clone()]).passed());
        assert!(!report(vec![pass.clone(), fail.clone()]).passed());
        assert!(!report(vec![stale]).passed());
        let mut waived = fail;
        waived.status = Status::Waived;
        let r = report(vec![pass, waived]);
        assert!(r.passed());
        assert_eq!(r.waived().len(), 1);
    }

    #[test]
    fn the_table_shows_the_fix_only_for_items_that_do_not_pass() {
        let r = report(vec![
            Finding::pass("ssl", "certificate ABC, 80 days left"),
            Finding::fail(
                "safe_mode",
                "OPERATOR_SAFE_MODE is `false`",
                "set it to true",
            ),
        ]);
        let text = r.render_human();
        assert!(
            text.contains("ssl        pass    certificate ABC"),
            "{text}"
        );
        assert!(
            text.contains("safe_mode  FAIL    OPERATOR_SAFE_MODE"),
            "{text}"
        );
        assert!(text.contains("fix: set it to true"), "{text}");
        assert!(
            text.contains("1 of 2 items do not pass: safe_mode"),
            "{text}"
        );
        assert_eq!(r.to_json()["passed"], false);
        assert_eq!(r.to_json()["findings"][1]["status"], "fail");
    }
}
