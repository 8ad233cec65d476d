# A sandbox host made ready for docker-compose 1.29 over DOCKER_HOST=ssh://, sourced by bench scripts (bash).
#
# compose_host_prepare WORK PROJECT_DIR STACK VLD_PROJECT_DIR
#   WORK             a scratch directory (gets home/.ssh, bin/ssh)
#   PROJECT_DIR      a directory where `vldeploy sandbox up` created the compose host (.vldeploy/sandbox/...)
#   STACK            the stack name whose images (vl/STACK-*) vldeploy built locally
#   VLD_PROJECT_DIR  a directory whose sandbox vldeploy deployed STACK to (its nginx site is copied)
# Afterwards: `compose_ssh CMD` runs CMD on the compose host; DOCKER_HOST, HOME, PATH, COMPOSE_PROJECT_NAME and
# the compose file's variables are exported; PROJECT_DIR/docker-compose.yml is bench/deploy/compose.yml.
# Among them is the compose host's POSTGRES_PASSWORD: vldeploy takes secrets from the environment before its
# secrets file, so run vldeploy afterwards only with `env -u POSTGRES_PASSWORD -u ADMIN_TOKEN -u DOCKER_HOST ...`.
#
# OpenSSH reads ~/.ssh/config from the passwd home, not $HOME: one config file names the host's port, key and
# known_hosts, and a wrapper `ssh` first on PATH passes it with -F (docker-compose 1.29 runs
# `ssh -l root -p PORT -- bench-compose docker system dial-stdio` per API connection). paramiko
# (COMPOSE_PARAMIKO_SSH=1) reads the same file as $HOME/.ssh/config, and $HOME/.ssh/known_hosts.
# DOCKER_HOST names the port too: without one, docker-py passes `-p 22`, which overrides the config's Port.

compose_ssh() { /usr/bin/ssh -F "$COMPOSE_HOST_SSH_CONFIG" bench-compose "$@"; }

compose_host_prepare() {
  local work=$1 dir=$2 stack=$3 vld=$4
  local here sb=.vldeploy/sandbox port imgs
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  /usr/bin/python3 -c 'import paramiko' 2>/dev/null || { echo "docker-compose over ssh:// needs python3-paramiko: apt-get install python3-paramiko" >&2; return 1; }
  command -v docker-compose >/dev/null || { echo "needs docker-compose 1.29: apt-get install docker-compose" >&2; return 1; }
  port=$(sed -n 's/^SANDBOX_SSH_PORT=//p' "$dir/$sb/sandbox.env")
  mkdir -p "$work/home/.ssh" "$work/bin"
  cp "$dir/$sb/known_hosts" "$work/home/.ssh/known_hosts"
  cat > "$work/home/.ssh/config" <<CFG
Host bench-compose
  HostName 127.0.0.1
  User root
  Port $port
  IdentityFile $dir/$sb/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $work/home/.ssh/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
CFG
  export COMPOSE_HOST_SSH_CONFIG=$work/home/.ssh/config
  compose_ssh true || { echo "cannot reach the compose host over ssh (127.0.0.1:$port)" >&2; return 1; }
  printf '#!/bin/sh\nexec /usr/bin/ssh -F %s "$@"\n' "$COMPOSE_HOST_SSH_CONFIG" > "$work/bin/ssh"
  chmod +x "$work/bin/ssh"
  export PATH="$work/bin:$PATH"
  [ "$(command -v ssh)" = "$work/bin/ssh" ] || { echo "the ssh wrapper is not first on PATH" >&2; return 1; }

  # Compose has no way to send local images: load them onto the host first (not timed), as a registry would.
  # The images are the ones the vldeploy host runs (earlier builds of the same stack leave other tags behind).
  local cdir=/var/lib/vldeploy/bench/nginx/conf.d vport
  vport=$(sed -n 's/^SANDBOX_SSH_PORT=//p' "$vld/$sb/sandbox.env")
  vld_ssh() { /usr/bin/ssh -p "$vport" -i "$vld/$sb/id_ed25519" -o UserKnownHostsFile="$vld/$sb/known_hosts" -o BatchMode=yes root@127.0.0.1 "$@"; }
  local ids id
  ids=$(vld_ssh "docker inspect -f '{{.Image}}' vl_postgres vl_backend vl_nginx")
  imgs=$(for id in $ids; do docker image inspect -f '{{range .RepoTags}}{{println .}}{{end}}' "$id" | grep "^vl/$stack-" | head -n1; done)
  [ "$(echo "$imgs" | grep -c "^vl/$stack-")" = 3 ] || { echo "expected three vl/$stack-* images on the vldeploy host, found: $imgs" >&2; return 1; }
  # shellcheck disable=SC2086
  docker save $imgs | compose_ssh docker load >/dev/null

  # The nginx site vldeploy rendered for its own host, with an upstream naming compose's backend service (a
  # static `upstream` block, resolved when nginx starts, as a compose setup has it): the site's
  # `proxy_pass $backend_upstream` names that block.
  compose_ssh "mkdir -p $cdir /var/lib/vldeploy/bench/www /var/lib/vldeploy/bench/acme"
  vld_ssh "cat /var/lib/vldeploy/$stack/nginx/conf.d/site.conf" | compose_ssh "cat > $cdir/site.conf"
  printf 'upstream backend {\n    server backend:8080 max_fails=0;\n    keepalive 32;\n}\nmap $host $backend_upstream {\n    default http://backend;\n}\n' |
    compose_ssh "cat > $cdir/00-upstream.conf"

  PG_IMAGE=$(echo "$imgs" | grep -- -postgres:) BACKEND_IMAGE=$(echo "$imgs" | grep -- -backend:) NGINX_IMAGE=$(echo "$imgs" | grep -- -nginx:)
  POSTGRES_PASSWORD=$(sed -n 's/^POSTGRES_PASSWORD=//p' "$dir/$sb/secrets.env" | tr -d '"')
  ADMIN_TOKEN=$(sed -n 's/^ADMIN_TOKEN=//p' "$dir/$sb/secrets.env" | tr -d '"')
  export PG_IMAGE BACKEND_IMAGE NGINX_IMAGE POSTGRES_PASSWORD ADMIN_TOKEN
  export DOCKER_HOST=ssh://root@bench-compose:$port HOME=$work/home COMPOSE_PROJECT_NAME=bench
  cp "$here/compose.yml" "$dir/docker-compose.yml"
}
