//! What can go wrong with the firewall: a policy that contradicts itself, a ruleset nft refuses, a lockout.

use crate::render::RenderError;
use crate::transport::TransportError;

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// stack.yaml asks for something the firewall refuses to do; nothing was changed.
    #[error("firewall of `{stack}`: {problem}\nhelp: {help}")]
    Policy {
        stack: String,
        problem: String,
        help: String,
    },
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The host lacks what the firewall needs.
    #[error("`{host}` cannot run the firewall: {problem}\nhelp: {help}")]
    Host {
        host: String,
        problem: String,
        help: String,
    },
    /// `nft -c` refused the ruleset; nothing was changed.
    #[error(
        "firewall step `{step}` on `{host}`: nft refused the ruleset, nothing was changed:\n{detail}\nhelp: fix the template (`templates/nftables/ruleset.nft.j2`) or the `firewall` section of stack.yaml"
    )]
    Refused {
        host: String,
        step: String,
        detail: String,
    },
    /// The new ruleset was put in place but could not be confirmed; the host put back the previous one.
    #[error(
        "the new firewall ruleset cut off `{host}`: a new SSH connection failed ({reason}).\nthe host restored its previous ruleset by itself after {after_s}s, and a new connection works again; nothing else was changed\nhelp: keep the SSH port ({ssh_port}) open from where vldeploy runs in `firewall.allow`"
    )]
    Reverted {
        host: String,
        reason: String,
        after_s: u64,
        ssh_port: u16,
    },
    /// The ruleset could not be confirmed, and the host could not be reached after the revert was due.
    #[error(
        "the new firewall ruleset on `{host}` could not be confirmed ({reason}), and the host still does not answer a new SSH connection {waited_s}s later ({after}).\nhelp: the host reverts to its previous ruleset by itself; if it stays unreachable, use its console: `nft delete table {table}` removes vldeploy's firewall"
    )]
    Unconfirmed {
        host: String,
        reason: String,
        waited_s: u64,
        after: String,
        table: &'static str,
    },
    /// A step of the apply failed on the host.
    #[error("firewall step `{step}` on `{host}` failed: {detail}")]
    Step {
        host: String,
        step: String,
        detail: String,
    },
}
