//! A second sandbox host beside a project's own (an off-site backup host): its address as the first host sees
//! it, and an SSH login from the first host into it, with the host key pinned on both ends.

use super::project::Project;

/// The address at which other sandbox hosts on the same Docker engine reach `host`'s sshd (port 22).
pub fn address(host: &Project) -> String {
    let container = format!("vldeploy-sandbox-{}", host.name);
    let out = std::process::Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
            &container,
        ])
        .output()
        .expect("docker inspect runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let ip = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(
        !ip.is_empty(),
        "`{container}` has no address: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ip
}

#[track_caller]
fn sh(p: &Project, cmd: &str) -> String {
    let run = p.ssh(cmd);
    assert_eq!(
        run.code, 0,
        "`{cmd}` on `{}` failed:\n{}{}",
        p.name, run.stdout, run.stderr
    );
    run.stdout
}

/// Lets root on `from` log in to `to` as `user` (created when missing, with a shell; not one of Debian's system
/// users such as `backup`, whose shell is nologin) with a key of root's, and pins `to`'s
/// host key in root's `known_hosts` on `from`: what an operator does once for an off-site copy. Returns `to`'s
/// address.
pub fn trust(from: &Project, to: &Project, user: &str) -> String {
    let addr = address(to);
    let public = sh(
        from,
        "test -f /root/.ssh/id_ed25519 || ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/id_ed25519; cat /root/.ssh/id_ed25519.pub",
    );
    sh(
        to,
        &format!(
            "id -u {user} >/dev/null 2>&1 || useradd -m -s /bin/sh {user}; \
             install -d -m 700 -o {user} -g {user} /home/{user}/.ssh && \
             printf '%s\\n' '{key}' >> /home/{user}/.ssh/authorized_keys && \
             chown {user}:{user} /home/{user}/.ssh/authorized_keys && chmod 600 /home/{user}/.ssh/authorized_keys",
            key = public.trim()
        ),
    );
    let host_key = sh(to, "cat /etc/ssh/ssh_host_ed25519_key.pub");
    let mut fields = host_key.split_whitespace();
    let (kind, key) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
    sh(
        from,
        &format!("printf '%s\\n' '{addr} {kind} {key}' >> /root/.ssh/known_hosts"),
    );
    let check = from.ssh(&format!(
        "ssh -o BatchMode=yes -o ConnectTimeout=10 {user}@{addr} true"
    ));
    assert_eq!(
        check.code, 0,
        "root on `{}` cannot log in to {user}@{addr}: {}",
        from.name, check.stderr
    );
    addr
}
