//! The host's own record: state file, deploy lock, audit log.
