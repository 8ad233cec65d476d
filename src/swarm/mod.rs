//! An environment with `hosts:` on Docker Swarm: forming the swarm across its hosts, labelled by role.

mod checkup;
mod deploy;
mod edge;
mod edge_health;
mod form;
mod logs;
mod plan;
mod preview;
mod prune;
mod releases;
mod services;
mod snapshot;

pub use checkup::{Checked, Examined, HostReach, PortProbe, Verdict, checkup};
pub use deploy::{
    CANDIDATE_ALIAS, DeployError, Placement, ServiceChange, ServicesPreview, await_spec,
    candidate_name, converge_services, deliver, image_commands, manager, placements,
    preview_services, stage_candidate,
};
pub use edge::{
    EdgeError, EdgeFile, edge_remotes, edges, prepare_edges, release_site, reload_nginx,
};
pub use edge_health::{EdgeHealth, EdgeProbe, parse_edge_health};
pub use form::{
    Node, SwarmError, connect, connect_host, describe, facts, firewall_text, form, form_nodes,
    node_firewalls,
};
pub use logs::{LogLine, LogSource, log_sources, merge, task_lines};
pub use preview::{
    ClusterPlan, NodeChanges, firewall_change, image_change, service_changes, swarm_change,
};
pub use releases::{
    RecordedRelease, ReleaseRow, RollbackRefusal, RollbackStep, ServiceReleases, SpecRelease,
    recorded_releases, release_id, rollback_step,
};
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
