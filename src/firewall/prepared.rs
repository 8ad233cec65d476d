//! Everything the firewall needs before it changes anything: the host's state, the policy, the ruleset, the change.

use super::TEST_CUT_SSH_ENV;
use super::change::{Change, decide};
use super::error::FirewallError;
use super::observed::{Observed, observe};
use super::policy::Policy;
use super::ruleset::Ruleset;
use crate::stack::Stack;
use crate::transport::Remote;

/// The host's firewall, what the stack asks of it, and what it takes to get there.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub observed: Observed,
    pub policy: Policy,
    pub ruleset: Ruleset,
    pub change: Change,
    /// The ruleset leaves SSH out on purpose (the test switch).
    pub cuts_ssh: bool,
}

/// Reads the host's firewall and renders the stack's. Changes nothing.
pub async fn prepare(remote: &Remote, stack: &Stack) -> Result<Prepared, FirewallError> {
    prepared_from(observe(remote).await?, stack)
}

/// Renders the stack's ruleset for a host observed as `observed` (the policy keeps the port this
/// connection came in on), and decides the change. Pure.
pub fn prepared_from(observed: Observed, stack: &Stack) -> Result<Prepared, FirewallError> {
    prepared_for_swarm(observed, stack, &[])
}

/// [`prepared_from`] for a node of a swarm whose nodes have `peers` as addresses (empty: one host). Pure.
pub fn prepared_for_swarm(
    observed: Observed,
    stack: &Stack,
    peers: &[std::net::IpAddr],
) -> Result<Prepared, FirewallError> {
    let ssh_port = observed.ssh_port.unwrap_or(stack.target.port);
    let mut policy = Policy::from_stack(stack, ssh_port)?;
    let cuts_ssh = std::env::var(TEST_CUT_SSH_ENV).is_ok_and(|v| v == "1");
    if cuts_ssh {
        policy = policy.without_ssh();
    }
    let ruleset =
        Ruleset::render_for_swarm(&policy, peers, Some(&stack.project_dir.join("templates")))?;
    let change = decide(&observed, &ruleset);
    Ok(Prepared {
        observed,
        policy,
        ruleset,
        change,
        cuts_ssh,
    })
}
