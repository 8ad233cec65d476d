//! The backup host's commands: the container that serves the pgBackRest repository, read and (re)started.

use super::{Command, q};

/// The label that carries the configuration hash of the repository's container.
pub const HASH_LABEL: &str = "vldeploy.pgbackrest";

/// Prints `<configuration hash> <running>` of `container`, or nothing when it does not exist.
pub fn inspect(container: &str) -> Command {
    Command::script(format!(
        "docker inspect -f {} {} 2>/dev/null || true",
        q(&format!(
            "{{{{index .Config.Labels \"{HASH_LABEL}\"}}}} {{{{.State.Running}}}}"
        )),
        q(container)
    ))
}

/// What the repository's container is made of on the backup host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoContainer {
    pub container: String,
    pub image: String,
    pub volume: String,
    /// The repository's path in the container (`repo1-path`).
    pub path: String,
    /// The variables' file (mode 0600) the container starts with.
    pub env_file: String,
    pub port: u16,
    pub hash: String,
}

/// Replaces `c.container` with one of this configuration: `pgbackrest server` in the stack's postgres image, the
/// repository in a volume, its TLS port published, restarted with the engine.
pub fn replace(c: &RepoContainer) -> Command {
    Command::script(format!(
        "docker rm -f {name} >/dev/null 2>&1; docker run -d --name {name} --restart unless-stopped --label {label} -p {port}:{port} -v {mount} --env-file {env} {image} pgbackrest-repository >/dev/null",
        name = q(&c.container),
        label = q(&format!("{HASH_LABEL}={}", c.hash)),
        port = c.port,
        mount = q(&format!("{}:{}", c.volume, c.path)),
        env = q(&c.env_file),
        image = q(&c.image),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_container_is_quoted_whole() {
        let c = RepoContainer {
            container: "vl_shop_pgbackrest".into(),
            image: "vl/shop-postgres:abc".into(),
            volume: "shop_pgbackrest_repo".into(),
            path: "/var/lib/pgbackrest".into(),
            env_file: "/var/lib/vldeploy/shop/pgbackrest.env".into(),
            port: 8432,
            hash: "sha256:0123".into(),
        };
        assert_eq!(
            replace(&c).text(),
            "docker rm -f vl_shop_pgbackrest >/dev/null 2>&1; docker run -d --name vl_shop_pgbackrest --restart unless-stopped --label vldeploy.pgbackrest=sha256:0123 -p 8432:8432 -v shop_pgbackrest_repo:/var/lib/pgbackrest --env-file /var/lib/vldeploy/shop/pgbackrest.env vl/shop-postgres:abc pgbackrest-repository >/dev/null"
        );
        assert_eq!(
            inspect("x;y").text(),
            "docker inspect -f '{{index .Config.Labels \"vldeploy.pgbackrest\"}} {{.State.Running}}' 'x;y' 2>/dev/null || true"
        );
    }
}
