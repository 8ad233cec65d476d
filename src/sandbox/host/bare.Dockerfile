# The bare sandbox host: what a rented VPS looks like before `vldeploy bootstrap` — Debian booted by systemd,
# sshd with a root login by key, and nothing else (no Docker engine, no nftables, no cron, no sudo).
ARG BASE=debian:bookworm-slim
FROM ${BASE}

ENV DEBIAN_FRONTEND=noninteractive
# The base may carry the service images' packages (nginx, PostgreSQL): a fresh server has neither.
RUN apt-get update \
    && apt-get purge -y -qq 'nginx*' 'postgresql*' >/dev/null 2>&1 || true
RUN apt-get update \
    && apt-get install -y --no-install-recommends openssh-server systemd systemd-sysv dbus ca-certificates \
    && apt-get autoremove -y -qq \
    && rm -rf /var/lib/apt/lists/*

# Host keys come from vldeploy (so clients can pin them); PAM's loginuid cannot be set in a container.
# Units that need hardware or a console are masked, as container hosting providers do.
RUN rm -f /etc/ssh/ssh_host_* \
    && mkdir -p /root/.ssh \
    && chmod 700 /root/.ssh \
    && sed -i 's/^\(session\s\+\)required\(\s\+pam_loginuid\.so\)/\1optional\2/' /etc/pam.d/sshd \
    && systemctl mask getty@tty1.service console-getty.service systemd-udevd.service \
        systemd-udev-trigger.service systemd-modules-load.service sys-kernel-config.mount \
        sys-kernel-debug.mount systemd-remount-fs.service systemd-firstboot.service \
    && systemctl enable ssh.service

COPY sshd.conf /etc/ssh/sshd_config.d/vldeploy-sandbox.conf

EXPOSE 22 80 443
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/lib/systemd/systemd"]
