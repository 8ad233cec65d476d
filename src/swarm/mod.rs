//! An environment with `hosts:` on Docker Swarm: forming the swarm across its hosts, labelled by role.

mod form;
mod plan;

pub use form::{Node, SwarmError, connect, describe, facts, form};

pub use plan::{
    Membership, NodeFacts, ROLE_LABEL_PREFIX, SwarmPlanError, SwarmStep, manager_count, plan,
    role_label,
};
