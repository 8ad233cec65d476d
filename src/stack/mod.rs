//! The stack.yaml model: parsing, `${VAR}` interpolation, secrets, validation with `file:line:col` diagnostics.

mod diagnostic;
mod document;
mod env_file;
mod error;
mod file_text;
mod format;
mod hosts;
mod interpolate;
mod keys;
mod load;
mod model;
mod reader;
mod schema;
mod section;
mod service;
mod suggest;
mod validate;
mod variables;
mod yaml_path;

pub use diagnostic::{Diagnostic, Location};
pub use error::StackError;
pub(crate) use format::shown_within;
pub(crate) use keys::CHECKLIST_ITEMS;
pub use load::{environment_names, load, load_with};
pub use model::{
    BuildSpec, ClusterHost, EnvValue, HealthCheck, HostKeys, ImageSource, PortMapping, Probe, Role,
    Service, SshAuth, SshUrl, Stack, VolumeMount,
};
pub use schema::schema;
pub use section::{
    Acme, AllowRule, Archive, ArchiveRepo, Backup, Checklist, Eab, Firewall, Proto, ProvidedCert,
    Retention, Tls,
};
pub(crate) use suggest::did_you_mean;
