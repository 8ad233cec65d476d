//! Commands about the host itself: a login's first word, root through `sudo`, its Docker engine's disk, and
//! pulling an image.

use super::Command;

/// Does nothing: a new connection's proof that the login works.
pub fn login_check() -> Command {
    Command::script("true")
}

/// Succeeds when the login may run commands as root through `sudo` without a password.
pub fn sudo_check() -> Command {
    Command::argv(["sudo", "-n", "true"])
}

/// Pulls `reference` into the host's engine.
pub fn docker_pull(reference: &str) -> Command {
    Command::argv(["docker", "pull"]).operands(&[reference])
}

/// Prints `df -P`'s line for Docker's data directory.
pub fn docker_disk() -> Command {
    Command::script("df -P /var/lib/docker 2>/dev/null | tail -n 1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_and_disk_are_exact() {
        assert_eq!(login_check().text(), "true");
        assert_eq!(sudo_check().text(), "sudo -n true");
        assert_eq!(
            docker_pull("registry.example/shop:1.2").text(),
            "docker pull registry.example/shop:1.2"
        );
        assert_eq!(docker_pull("-x").text(), "docker pull '-x'");
        assert_eq!(
            docker_disk().text(),
            "df -P /var/lib/docker 2>/dev/null | tail -n 1"
        );
    }
}
