//! Reaching a host: one SSH session carrying exec, uploads and the Docker API tunnel.
