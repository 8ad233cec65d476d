//! An environment with `hosts:` on Docker Swarm: forming the swarm across its hosts, labelled by role.

mod checkup;
mod deploy;
mod edge;
mod form;
mod plan;
mod services;
mod snapshot;

pub use checkup::{Checked, Examined, HostReach, PortProbe, Verdict, checkup};
pub use deploy::{DeployError, converge_services, deliver, image_commands, manager};
pub use edge::{EdgeError, EdgeFile, edge_remotes, edges, prepare_edges, reload_nginx};
pub use form::{Node, SwarmError, connect, connect_host, describe, facts, form, form_nodes};
pub use snapshot::{
    ManagerView, NodeView, ServiceReport, ServiceView, Snapshot, TaskRow, TaskView, image_short,
    service_role,
};

pub use plan::{
    Membership, NodeFacts, ROLE_LABEL_PREFIX, SwarmPlanError, SwarmStep, manager_count, plan,
    role_label,
};

pub use services::{
    ClusterDesign, ConfigDesign, ConfigUse, ImageCommand, SPEC_HASH_LABEL, SecretDesign, SecretUse,
    ServiceDesign, ServiceMode, ServicesError, UpdateOrder, VolumeUse, design, network_name,
    service_name,
};
