#!/bin/sh
# Entrypoint of the stack's PostgreSQL image: initialises an empty PGDATA from POSTGRES_USER,
# POSTGRES_PASSWORD and POSTGRES_DB, then runs postgres in the foreground as the postgres user.
set -eu

PGDATA="${PGDATA:-/var/lib/postgresql/data}"
export PGDATA

as_postgres() {
    setpriv --reuid=postgres --regid=postgres --init-groups "$@"
}

log() {
    echo "entrypoint: $*" >&2
}

# The image's ready-made empty cluster (/usr/lib/vl-pgtemplate, made by the image's initdb with the settings
# below) copied into an empty PGDATA: a copy costs far less CPU than initdb. The copy gets its own system
# identifier, its superuser POSTGRES_USER's name and POSTGRES_PASSWORD. Returns 1, with PGDATA empty again, when
# it cannot be used (no template, a PGDATA that is not empty, a password on more than one line, a TZ that initdb
# would write into postgresql.conf): initdb then.
TEMPLATE=/usr/lib/vl-pgtemplate
from_template() {
    [ -s "$TEMPLATE/PG_VERSION" ] || return 1
    [ -z "${TZ:-}" ] || return 1
    [ -z "$(ls -A "$PGDATA")" ] || return 1
    case "$POSTGRES_PASSWORD" in *"
"*) return 1 ;; esac
    log "initialising a new cluster in $PGDATA from the image's template"
    if cp -a "$TEMPLATE/." "$PGDATA/" && as_postgres perl /usr/local/lib/vl-new-identity.pl "$PGDATA" \
        && superuser; then
        return 0
    fi
    log "the image's template could not be used; running initdb instead"
    find "$PGDATA" -mindepth 1 -delete
    return 1
}

# The template's superuser (`postgres`, OID 10) gets POSTGRES_PASSWORD and POSTGRES_USER's name, and without init
# scripts POSTGRES_DB is created, in one single-user session. Its messages are not shown (a statement carries the
# password): on a failure, initdb's path runs instead and shows its own.
superuser() {
    user_sql="$(printf '%s' "$POSTGRES_USER" | sed "s/'/''/g")"
    password_sql="$(printf '%s' "$POSTGRES_PASSWORD" | sed "s/'/''/g")"
    create=""
    if [ -z "$(init_scripts)" ] && [ "$POSTGRES_DB" != "postgres" ]; then
        create=1
    fi
    errors="$(mktemp)"
    {
        printf "ALTER ROLE postgres PASSWORD '%s';\n\n" "$password_sql"
        if [ "$POSTGRES_USER" != "postgres" ]; then
            # The session's own role cannot be renamed with ALTER ROLE: its catalog row is updated instead.
            printf "UPDATE pg_authid SET rolname = '%s' WHERE oid = 10;\n\n" "$user_sql"
        fi
        if [ -n "$create" ]; then
            printf 'CREATE DATABASE "%s";\n\n' "$(printf '%s' "$POSTGRES_DB" | sed 's/"/""/g')"
        fi
    } | as_postgres postgres --single -j -D "$PGDATA" -c fsync=off -c log_min_messages=error \
            -c log_min_error_statement=panic -c password_encryption=scram-sha-256 postgres >/dev/null 2>"$errors" \
        || { rm -f "$errors"; log "setting the superuser's name and password failed"; return 1; }
    if grep -q -E '(ERROR|FATAL|PANIC):' "$errors"; then
        rm -f "$errors"
        log "setting the superuser's name and password, or creating database $POSTGRES_DB, failed"
        return 1
    fi
    rm -f "$errors"
    database_created="$create"
}

# The init scripts (/docker-entrypoint-initdb.d/*.sql), if any.
init_scripts() {
    ls /docker-entrypoint-initdb.d/*.sql 2>/dev/null || true
}

# A new cluster by initdb (no template in the image, or one that cannot be used): initdb does not sync each file
# it writes (`--no-sync`): one `sync` of the volume's filesystem after the initialisation makes it durable.
initialise() {
    log "initialising a new cluster in $PGDATA"
    pwfile="$(mktemp)"
    chmod 600 "$pwfile"
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    chown postgres:postgres "$pwfile"
    as_postgres initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 --no-sync >/dev/null
    rm -f "$pwfile"

    cat >> "$PGDATA/postgresql.conf" <<CONF

# Set by the image's entrypoint.
listen_addresses = '*'
password_encryption = 'scram-sha-256'
CONF

    cat > "$PGDATA/pg_hba.conf" <<HBA
# TYPE  DATABASE  USER  ADDRESS  METHOD
# Inside the container, over the unix socket (docker exec, pg_dump): trusted.
local   all       all            trust
# Everything over TCP needs the password.
host    all       all   all      scram-sha-256
HBA
    chown postgres:postgres "$PGDATA/pg_hba.conf"
    chmod 600 "$PGDATA/pg_hba.conf"
}

# pgBackRest's configuration and TLS files, from the variables vldeploy sets (`backup.archive`): the key is
# readable by postgres alone.
pgbackrest_files() {
    mkdir -p /etc/pgbackrest /var/log/pgbackrest /tmp/pgbackrest
    printf '%s' "$VL_PGBACKREST_CONF" | base64 -d > /etc/pgbackrest/pgbackrest.conf
    chmod 600 /etc/pgbackrest/pgbackrest.conf
    if [ -n "${VL_PGBACKREST_TLS_KEY:-}" ]; then
        mkdir -p /etc/pgbackrest/tls
        printf '%s' "${VL_PGBACKREST_TLS_CA:?}" | base64 -d > /etc/pgbackrest/tls/ca.crt
        printf '%s' "${VL_PGBACKREST_TLS_CERT:?}" | base64 -d > /etc/pgbackrest/tls/self.crt
        (umask 077 && printf '%s' "$VL_PGBACKREST_TLS_KEY" | base64 -d > /etc/pgbackrest/tls/self.key)
        chmod 700 /etc/pgbackrest/tls
        chmod 600 /etc/pgbackrest/tls/*
    fi
    chown -R postgres:postgres /etc/pgbackrest /var/log/pgbackrest /tmp/pgbackrest
    repo="$(sed -n 's/^repo1-path=//p' /etc/pgbackrest/pgbackrest.conf)"
    if [ -n "$repo" ]; then
        mkdir -p "$repo"
        chown postgres:postgres "$repo"
        chmod 750 "$repo"
    fi
}

# On a backup host: the repository, served to the database host by `pgbackrest server` (TLS) in the foreground.
if [ "${1:-}" = "pgbackrest-repository" ]; then
    pgbackrest_files
    log "serving the pgBackRest repository over TLS"
    exec setpriv --reuid=postgres --regid=postgres --init-groups pgbackrest --config=/etc/pgbackrest/pgbackrest.conf server
fi

# `docker run IMAGE psql ...` and friends run as given.
if [ "${1:-postgres}" != "postgres" ]; then
    exec "$@"
fi
shift || true

if [ "$(id -u)" = "0" ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    chmod 2775 /var/run/postgresql
else
    log "must start as root (it drops to the postgres user itself)"
    exit 1
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    POSTGRES_USER="${POSTGRES_USER:-postgres}"
    POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        log "the data directory is empty and POSTGRES_PASSWORD is not set; refusing to create a database without a password"
        exit 1
    fi

    database_created=""
    if ! from_template; then
        initialise
    fi

    if [ -n "$database_created" ]; then
        log "created database $POSTGRES_DB"
    elif [ -n "$(init_scripts)" ]; then
        # Init scripts: a server on the unix socket only, to create the database and run them.
        as_postgres pg_ctl --pgdata="$PGDATA" --silent --wait --options="-c listen_addresses=''" start >/dev/null
        if [ "$POSTGRES_DB" != "postgres" ]; then
            as_postgres psql --no-psqlrc --quiet --set ON_ERROR_STOP=1 --username="$POSTGRES_USER" --dbname=postgres \
                --set db="$POSTGRES_DB" <<'SQL'
CREATE DATABASE :"db";
SQL
            log "created database $POSTGRES_DB"
        fi
        for f in /docker-entrypoint-initdb.d/*.sql; do
            [ -f "$f" ] || continue
            log "running $f"
            as_postgres psql --no-psqlrc --quiet --set ON_ERROR_STOP=1 --username="$POSTGRES_USER" \
                --dbname="$POSTGRES_DB" --file="$f"
        done
        as_postgres pg_ctl --pgdata="$PGDATA" --silent --wait --mode=fast stop >/dev/null
    elif [ "$POSTGRES_DB" != "postgres" ]; then
        # Only the database to create: single-user mode, without a server to start, wait for and stop. It
        # reports a failed statement on stderr and still exits 0, so its errors are looked for there.
        errors="$(mktemp)"
        printf 'CREATE DATABASE "%s";\n\n' "$(printf '%s' "$POSTGRES_DB" | sed 's/"/""/g')" \
            | as_postgres postgres --single -j -D "$PGDATA" -c fsync=off -c log_min_messages=error postgres \
                >/dev/null 2>"$errors" || { cat "$errors" >&2; exit 1; }
        if grep -q -E '(ERROR|FATAL|PANIC):' "$errors"; then
            cat "$errors" >&2
            log "creating database $POSTGRES_DB failed"
            exit 1
        fi
        rm -f "$errors"
        log "created database $POSTGRES_DB"
    fi
    sync -f "$PGDATA/PG_VERSION"
    log "initialisation done"
else
    log "found an existing cluster in $PGDATA; starting it"
fi

# Continuous archiving with pgBackRest (`backup.archive` in stack.yaml): vldeploy passes the configuration, the
# archive command and timeout; a local repository is a volume, owned by postgres.
if [ -n "${VL_PGBACKREST_CONF:-}" ]; then
    pgbackrest_files
    if [ -n "${VL_PGBACKREST_SERVER:-}" ]; then
        # The backup host runs the backups and reaches PGDATA through this side's `pgbackrest server`. It runs
        # here, beside postgres, because it needs PGDATA, the socket and postgres' user: a sidecar would need both
        # shared, and would outlive a stopped postgres. It is restarted if it ends; it ends with the container.
        log "serving PGDATA to the backup host's pgBackRest over TLS (port $VL_PGBACKREST_SERVER)"
        (while :; do
            setpriv --reuid=postgres --regid=postgres --init-groups \
                pgbackrest --config=/etc/pgbackrest/pgbackrest.conf server || true
            sleep 1
        done) &
    fi
    log "archiving WAL with pgBackRest (archive_timeout ${VL_ARCHIVE_TIMEOUT:-60s})"
    set -- -c archive_mode=on -c "archive_command=${VL_ARCHIVE_COMMAND:?}" \
        -c "archive_timeout=${VL_ARCHIVE_TIMEOUT:-60s}" -c wal_level=replica "$@"
fi

exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" "$@"
