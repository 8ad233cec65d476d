#!/bin/sh
# Makes the image's ready-made empty cluster in $1: the initdb a first start ran before (UTF8, C.UTF-8, no data
# checksums, trust over the unix socket, scram-sha-256 over TCP), with the entrypoint's settings. Its bootstrap
# superuser is `postgres`, without a password: a first start renames it to POSTGRES_USER and sets the password.
set -eu
dir="$1"
mkdir -p "$dir"
chown postgres:postgres "$dir"
chmod 700 "$dir"
setpriv --reuid=postgres --regid=postgres --init-groups initdb --pgdata="$dir" --username=postgres \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 --no-sync >/dev/null

cat >> "$dir/postgresql.conf" <<CONF

# Set by the image's entrypoint.
listen_addresses = '*'
password_encryption = 'scram-sha-256'
CONF

cat > "$dir/pg_hba.conf" <<HBA
# TYPE  DATABASE  USER  ADDRESS  METHOD
# Inside the container, over the unix socket (docker exec, pg_dump): trusted.
local   all       all            trust
# Everything over TCP needs the password.
host    all       all   all      scram-sha-256
HBA
chown postgres:postgres "$dir/pg_hba.conf"
chmod 600 "$dir/pg_hba.conf"
# The cluster was shut down cleanly by initdb; its files are made durable by the image's layer.
test -s "$dir/PG_VERSION"
