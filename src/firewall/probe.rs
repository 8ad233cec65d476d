//! The outside probe: from where vldeploy runs, every allowed port must answer and every closed one must not.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::FirewallError;
use super::policy::Policy;
use super::reach::Reach;
use crate::stack::{Proto, Stack};

/// How long a connection attempt, and then a reply, may take before the port counts as silent.
pub(crate) const PROBE_WAIT: Duration = Duration::from_secs(5);

/// Bytes sent once connected: most servers reply to them or hang up (sshd speaks first anyway).
const NUDGE: &[u8] = b"HEAD / HTTP/1.0\r\n\r\n";

/// What the firewall must do with a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// An allowed port: it must answer.
    Open,
    /// A port that must be closed: it must not answer.
    Closed,
}

/// What the probe saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Seen {
    /// A server replied.
    Answered,
    /// The host answered by refusing or closing the connection: reachable, nothing serving.
    Refused,
    /// Nothing came back: the connection was dropped on the way.
    NoAnswer,
    /// Not tried (see the note).
    NotProbed,
}

impl Seen {
    fn answers(self) -> bool {
        matches!(self, Self::Answered | Self::Refused)
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Refused => "refused",
            Self::NoAnswer => "no answer",
            Self::NotProbed => "not probed",
        }
    }
}

/// One port's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortProbe {
    pub port: u16,
    pub proto: &'static str,
    pub expect: Expect,
    /// Why the port is open or closed (`ssh`, `http`, `database`, …).
    pub why: String,
    /// The address tried.
    pub address: Option<String>,
    pub seen: Seen,
    /// `None` when not probed.
    pub ok: Option<bool>,
    pub note: String,
}

/// The probe of a whole policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeReport {
    pub stack: String,
    pub ports: Vec<PortProbe>,
}

impl ProbeReport {
    /// Every probed port behaved (what the go-live checklist's `firewall` item asks).
    pub fn passed(&self) -> bool {
        self.ports.iter().all(|p| p.ok != Some(false)) && self.ports.iter().any(|p| p.ok.is_some())
    }

    /// The ports that failed, as `5432/tcp answered`.
    pub fn failures(&self) -> Vec<String> {
        self.ports
            .iter()
            .filter(|p| p.ok == Some(false))
            .map(|p| format!("{}/{} {}", p.port, p.proto, p.seen.describe()))
            .collect()
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["passed"] = self.passed().into();
        v
    }

    /// A table for people.
    pub fn render_human(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<10} {:<8} {:<10} {:<11} {:<22} RESULT",
            "PORT", "WHY", "EXPECTED", "SEEN", "ADDRESS"
        );
        for p in &self.ports {
            let result = match p.ok {
                Some(true) => "ok".to_owned(),
                Some(false) => "FAIL".to_owned(),
                None => format!("skipped: {}", p.note),
            };
            let _ = writeln!(
                out,
                "{:<10} {:<8} {:<10} {:<11} {:<22} {result}",
                format!("{}/{}", p.port, p.proto),
                p.why,
                match p.expect {
                    Expect::Open => "answer",
                    Expect::Closed => "no answer",
                },
                p.seen.describe(),
                p.address.as_deref().unwrap_or("-"),
            );
        }
        let failures = self.failures();
        if self.passed() {
            let _ = writeln!(out, "probe passed");
        } else if failures.is_empty() {
            let _ = writeln!(out, "probe inconclusive: no port could be probed");
        } else {
            let _ = writeln!(out, "probe FAILED: {}", failures.join(", "));
        }
        out
    }
}

/// Probes `stack`'s firewall from this machine.
pub async fn probe(stack: &Stack) -> Result<ProbeReport, FirewallError> {
    let reach = Reach::for_stack(stack);
    let policy = Policy::from_stack(stack, reach.ssh_port())?;
    Ok(probe_with(&policy, &reach, PROBE_WAIT).await)
}

/// Probes every port of `policy` through `reach`, all at once; each waits at most `wait` twice.
pub async fn probe_with(policy: &Policy, reach: &Reach, wait: Duration) -> ProbeReport {
    let mut plans: Vec<(PortProbe, bool)> = Vec::new();
    for a in &policy.allow {
        let mut p = PortProbe {
            port: a.port,
            proto: super::policy::proto_name(a.proto),
            expect: Expect::Open,
            why: a.why.to_owned(),
            address: reach.address(a.port),
            seen: Seen::NotProbed,
            ok: None,
            note: String::new(),
        };
        let try_it = if a.proto == Proto::Udp {
            p.note = "udp is not probed".to_owned();
            false
        } else if !a.from.is_empty() {
            p.note = format!("open only from {}", a.from.join(", "));
            false
        } else if p.address.is_none() {
            p.note = reach.unreachable_hint(a.port);
            false
        } else {
            true
        };
        plans.push((p, try_it));
    }
    for port in &policy.must_be_closed {
        let why = if *port == super::policy::DATABASE_PORT {
            "database"
        } else {
            "closed"
        };
        let address = reach.address(*port);
        let note = if address.is_none() {
            reach.unreachable_hint(*port)
        } else {
            String::new()
        };
        let try_it = address.is_some();
        plans.push((
            PortProbe {
                port: *port,
                proto: "tcp",
                expect: Expect::Closed,
                why: why.to_owned(),
                address,
                seen: Seen::NotProbed,
                ok: None,
                note,
            },
            try_it,
        ));
    }
    let proxied = reach.proxied();
    let knocks = plans.into_iter().map(|(mut p, try_it)| async move {
        if let (true, Some(addr)) = (try_it, p.address.clone()) {
            p.seen = knock(&addr, proxied, wait).await;
            p.ok = Some(p.seen.answers() == (p.expect == Expect::Open));
        }
        p
    });
    ProbeReport {
        stack: policy.stack.clone(),
        ports: futures_util::future::join_all(knocks).await,
    }
}

/// Connects to `addr` and classifies what comes back.
pub(crate) async fn knock(addr: &str, proxied: bool, wait: Duration) -> Seen {
    let mut stream = match tokio::time::timeout(wait, TcpStream::connect(addr)).await {
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Seen::Refused,
        // A timeout, or the network said no route: nothing came back from the host.
        Err(_) | Ok(Err(_)) => return Seen::NoAnswer,
        Ok(Ok(s)) => s,
    };
    if stream.write_all(NUDGE).await.is_err() {
        return Seen::Refused;
    }
    let mut buf = [0u8; 256];
    match tokio::time::timeout(wait, stream.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => Seen::Refused,
        // Through a proxy the connection was accepted before the host saw it; directly, the host accepted it.
        Err(_) if proxied => Seen::NoAnswer,
        Ok(Ok(_)) | Err(_) => Seen::Answered,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use tokio::net::TcpListener;

    /// A server that answers, one that hangs up at once, and a port nobody listens on.
    async fn servers() -> (u16, u16, u16) {
        let answering = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hanging_up = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ports = (
            answering.local_addr().unwrap().port(),
            hanging_up.local_addr().unwrap().port(),
            free.local_addr().unwrap().port(),
        );
        drop(free);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = answering.accept().await {
                tokio::spawn(async move {
                    let _ = s.write_all(b"SSH-2.0-test\r\n").await;
                    tokio::time::sleep(Duration::from_secs(30)).await;
                });
            }
        });
        tokio::spawn(async move {
            while let Ok((s, _)) = hanging_up.accept().await {
                drop(s);
            }
        });
        ports
    }

    #[tokio::test]
    async fn knock_tells_answered_from_refused() {
        let (answering, hanging_up, free) = servers().await;
        let wait = Duration::from_secs(10);
        let at = |p: u16| format!("127.0.0.1:{p}");
        assert_eq!(knock(&at(answering), true, wait).await, Seen::Answered);
        assert_eq!(knock(&at(hanging_up), true, wait).await, Seen::Refused);
        assert_eq!(knock(&at(free), false, wait).await, Seen::Refused);
    }

    #[tokio::test]
    async fn a_silent_connection_is_no_answer_only_through_a_proxy() {
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut kept = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                kept.push(s);
            }
        });
        let addr = format!("127.0.0.1:{port}");
        let wait = Duration::from_millis(500);
        assert_eq!(knock(&addr, true, wait).await, Seen::NoAnswer);
        assert_eq!(knock(&addr, false, wait).await, Seen::Answered);
    }

    #[tokio::test]
    async fn the_report_passes_only_when_allowed_ports_answer_and_closed_ones_do_not() {
        let (answering, hanging_up, _) = servers().await;
        let stack = crate::firewall::ruleset::tests::fixture("default.yaml");
        let policy = Policy::from_stack(&stack, 22).unwrap();
        // 22 answers, 80 is refused (reachable), 443 is not published, 5432 answers, 8080 is missing.
        let reach = Reach::Published {
            host: "127.0.0.1".into(),
            ports: BTreeMap::from([(22, answering), (80, hanging_up), (5432, answering)]),
        };
        let report = probe_with(&policy, &reach, Duration::from_secs(10)).await;
        let seen: Vec<(u16, Seen, Option<bool>)> = report
            .ports
            .iter()
            .map(|p| (p.port, p.seen, p.ok))
            .collect();
        assert_eq!(
            seen,
            [
                (22, Seen::Answered, Some(true)),
                (80, Seen::Refused, Some(true)),
                (443, Seen::NotProbed, None),
                (5432, Seen::Answered, Some(false)),
                (8080, Seen::NotProbed, None),
            ]
        );
        assert!(!report.passed());
        assert_eq!(report.failures(), ["5432/tcp answered"]);
        let human = report.render_human();
        assert!(human.contains("probe FAILED: 5432/tcp answered"), "{human}");
        assert!(human.contains("--publish 8080"), "{human}");
        assert_eq!(report.to_json()["passed"], false);
    }
}
