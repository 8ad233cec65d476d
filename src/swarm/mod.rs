//! An environment with `hosts:` on Docker Swarm: forming the swarm across its hosts, labelled by role.

mod plan;

pub use plan::{
    Membership, NodeFacts, ROLE_LABEL_PREFIX, SwarmPlanError, SwarmStep, manager_count, plan,
    role_label,
};
