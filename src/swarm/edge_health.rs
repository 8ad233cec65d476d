//! What `GET /api/health` through each edge node's nginx task answered, and doctor's finding for it: the
//! request a customer makes, asked on every edge, since each one serves on its own. Pure: no host is asked.

use super::checkup::{Checked, Verdict};

/// What one edge node said (the output of `crate::remote::edge::health_through_nginx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeHealth {
    /// No nginx task runs on the node.
    NoTask,
    /// nginx answered `status` (`0` when nothing answered in time), with the maintenance flag set or not.
    Answered { maintenance: bool, status: u16 },
}

/// One edge node: its `user@host:port`, and what it said (none when it could not be asked: the SSH finding
/// names that host already).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeProbe {
    pub target: String,
    pub health: Option<EdgeHealth>,
}

/// Reads `none` or `on|off STATUS`; none for anything else.
pub fn parse_edge_health(out: &str) -> Option<EdgeHealth> {
    let mut words = out.split_whitespace();
    let first = words.next()?;
    let health = match first {
        "none" => EdgeHealth::NoTask,
        "on" | "off" => EdgeHealth::Answered {
            maintenance: first == "on",
            status: words.next()?.parse().ok()?,
        },
        _ => return None,
    };
    words.next().is_none().then_some(health)
}

/// The finding of one edge, when it could be asked.
pub(super) fn edge_finding(env: &str, probe: &EdgeProbe) -> Option<Checked> {
    let health = probe.health?;
    let at = &probe.target;
    let (verdict, finding, action) = match health {
        EdgeHealth::Answered { status: 200, .. } => (
            Verdict::Ok,
            format!("edge {at}: GET /api/health through nginx: 200"),
            None,
        ),
        EdgeHealth::Answered {
            maintenance: true,
            status: 503,
        } => (
            Verdict::Warn,
            format!("edge {at}: GET /api/health through nginx answered 503: the maintenance page"),
            Some(format!(
                "`vldeploy maintenance off -e {env}` serves the API again on every edge"
            )),
        ),
        EdgeHealth::Answered { status: 0, .. } => (
            Verdict::Fail,
            format!("edge {at}: GET /api/health through nginx: no answer within 5 s"),
            Some(format!(
                "see the service findings above; `docker service ps` on a manager, then `vldeploy up -e {env}`"
            )),
        ),
        EdgeHealth::Answered { status, .. } => (
            Verdict::Fail,
            format!("edge {at}: GET /api/health through nginx answered {status}"),
            Some(format!(
                "see the backend and postgres findings above; `docker service logs` of the backend on a manager, then `vldeploy up -e {env}`"
            )),
        ),
        EdgeHealth::NoTask => (
            Verdict::Fail,
            format!("edge {at}: no nginx task runs there, so it serves nothing"),
            Some(format!(
                "`vldeploy status -e {env}` shows where nginx runs; `vldeploy up -e {env}` puts it back on every edge"
            )),
        ),
    };
    Some(Checked {
        check: "api health".into(),
        verdict,
        finding,
        action,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn probe(health: Option<EdgeHealth>) -> EdgeProbe {
        EdgeProbe {
            target: "root@10.0.0.1:22".into(),
            health,
        }
    }

    #[test]
    fn an_edge_says_none_or_its_flag_and_status() {
        assert_eq!(parse_edge_health("none\n"), Some(EdgeHealth::NoTask));
        assert_eq!(
            parse_edge_health("off 200\n"),
            Some(EdgeHealth::Answered {
                maintenance: false,
                status: 200
            })
        );
        assert_eq!(
            parse_edge_health("on 503"),
            Some(EdgeHealth::Answered {
                maintenance: true,
                status: 503
            })
        );
        for bad in [
            "",
            "off",
            "off two",
            "maybe 200",
            "off 200 extra",
            "off 99999",
        ] {
            assert_eq!(parse_edge_health(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn each_answer_gives_its_verdict_and_what_to_do() {
        let answered = |maintenance, status| {
            Some(EdgeHealth::Answered {
                maintenance,
                status,
            })
        };
        let ok = edge_finding("cluster", &probe(answered(false, 200))).unwrap();
        assert_eq!(ok.verdict, Verdict::Ok);
        assert_eq!(ok.check, "api health");
        assert_eq!(
            ok.finding,
            "edge root@10.0.0.1:22: GET /api/health through nginx: 200"
        );
        assert_eq!(ok.action, None);
        let paused = edge_finding("cluster", &probe(answered(true, 503))).unwrap();
        assert_eq!(paused.verdict, Verdict::Warn);
        assert!(
            paused
                .action
                .unwrap()
                .contains("vldeploy maintenance off -e cluster")
        );
        // A 503 without the flag is the backend missing behind nginx, not the maintenance page.
        let down = edge_finding("cluster", &probe(answered(false, 503))).unwrap();
        assert_eq!(down.verdict, Verdict::Fail);
        assert_eq!(
            down.finding,
            "edge root@10.0.0.1:22: GET /api/health through nginx answered 503"
        );
        let silent = edge_finding("cluster", &probe(answered(false, 0))).unwrap();
        assert_eq!(silent.verdict, Verdict::Fail);
        assert!(
            silent.finding.ends_with("no answer within 5 s"),
            "{silent:?}"
        );
        let none = edge_finding("cluster", &probe(Some(EdgeHealth::NoTask))).unwrap();
        assert_eq!(none.verdict, Verdict::Fail);
        assert!(none.action.unwrap().contains("vldeploy up -e cluster"));
        assert_eq!(edge_finding("cluster", &probe(None)), None);
    }
}
