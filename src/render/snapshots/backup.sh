#!/bin/bash
# Database backups of stack `vaibava` (production). Rendered by vldeploy; `vldeploy up` overwrites edits.
#
# Usage: backup.sh [--tag TAG] [--wait SECONDS]
#
# Dumps the database with pg_dump inside the postgres container to a temporary file, checks pg_dump's status,
# the gzip stream, the dump's completion marker and a minimum size, writes a sha256 sidecar, then renames the
# file to db_backup_YYYYMMDD_HHMMSS[_TAG].sql.gz: a file with that name is always a complete, checked backup.
# Old backups are pruned only after a success. Every run appends one JSON line to the log and prints it.
#
# Exit status: 0 a backup was made; 1 it failed and no new backup exists; 2 a backup was made but copying it
# to the second location failed (the copy's sha256 is checked there, on the far side, before it is renamed
# into place); 64 bad arguments; 75 another run holds the lock (after --wait seconds).
set -Eeuo pipefail
umask 077
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C

STACK=vaibava
DIR=/var/backups/vaibava
CONTAINER=vl_postgres
DATABASE=vaibava_db
DB_USER=postgres
LOG=/var/log/vl_backup.log
MIN_BYTES=512
KEEP_DAILY=7
KEEP_WEEKLY=4
KEEP_MONTHLY=6
KEEP_TAGGED=5
COPY_TO=backup@vault.example:/srv/vaibava
ENCRYPT_TO=''
MARKER='-- PostgreSQL database dump complete'

started_ns=$(date +%s%N)
tag=""
wait_s=0
temps=()
work=""

json_string() {
    local s
    s=$(printf '%s' "$1" | tr -d '\000-\011\013-\037')
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    printf '"%s"' "$s"
}

# Appends the run's one JSON line to the log, prints it, and exits with $2.
finish() {
    local result=$1 code=$2 extra=${3:-} now_ns seconds line
    now_ns=$(date +%s%N)
    seconds=$(( (now_ns - started_ns) / 1000000 ))
    line=$(printf '{"time":"%s","stack":%s,"result":"%s","tag":%s,"seconds":%d.%03d%s}' \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(json_string "$STACK")" "$result" "$(json_string "$tag")" \
        $((seconds / 1000)) $((seconds % 1000)) "$extra")
    printf '%s\n' "$line" >> "$LOG" 2>/dev/null || true
    printf '%s\n' "$line"
    trap - ERR
    exit "$code"
}

fail() {
    finish failed 1 ",\"step\":$(json_string "$1"),\"error\":$(json_string "$2")"
}

# The last three non-empty lines of file $1, joined by `; `.
lines() {
    tail -n 20 -- "$1" 2>/dev/null | awk 'NF { l[n++] = $0 } END { for (i = (n > 3 ? n - 3 : 0); i < n; i++) printf "%s%s", l[i], (i < n - 1 ? "; " : "") }'
}

# The bytes free on the backup directory's filesystem.
free_bytes() {
    local n
    n=$(df -P -B1 -- "$DIR" 2>/dev/null | awk 'NR == 2 { print $4 }') || true
    [[ $n =~ ^[0-9]+$ ]] && printf '%s' "$n" || printf '0'
}

# Fails step $1 with message $2; when $2 says the disk is full, the report says so with the free bytes, after
# the partial file $3 is removed (so the bytes it held count as free).
fail_write() {
    if [[ $2 == *"No space left on device"* || $2 == *"no space left on device"* ]]; then
        rm -f -- "$3"
        finish failed 1 ",\"step\":\"disk-full\",\"failed\":$(json_string "$1"),\"free_bytes\":$(free_bytes),\"error\":$(json_string "$2")"
    fi
    fail "$1" "$2"
}

cleanup() {
    local t
    for t in "${temps[@]}"; do
        rm -f -- "$t"
    done
    [ -z "$work" ] || rm -rf -- "$work"
}
trap cleanup EXIT
trap 'fail interrupted "the run was interrupted by a signal"' INT TERM HUP
trap 'fail internal "line $LINENO: a command failed (status $?)"' ERR

while [ $# -gt 0 ]; do
    case "$1" in
        --tag) tag=${2:-}; shift 2 || shift ;;
        --wait) wait_s=${2:-}; shift 2 || shift ;;
        *) fail usage "unknown argument \`$1\` (usage: backup.sh [--tag TAG] [--wait SECONDS])" ;;
    esac
done
[[ -z $tag || $tag =~ ^[a-z0-9-]{1,32}$ ]] || { tag=""; fail usage "a tag is 1 to 32 of [a-z0-9-]"; }
[[ $wait_s =~ ^[0-9]{1,5}$ ]] || fail usage "--wait takes whole seconds"

mkdir -p -- "$DIR"
chmod 700 -- "$DIR"
exec 9>>"$DIR/.backup.lock"
if [ "$wait_s" -eq 0 ]; then
    flock -n 9 || finish busy 75 ',"error":"another backup of this stack is running"'
else
    flock -w "$wait_s" 9 || finish busy 75 ',"error":"another backup of this stack is still running"'
fi

# Leftovers of a run that was killed (a power cut): never backups, since they were never renamed.
rm -f -- "$DIR"/.db_backup_*.tmp

name="db_backup_$(date +%Y%m%d_%H%M%S)${tag:+_$tag}.sql.gz"
while [ -e "$DIR/$name" ]; do
    sleep 1
    name="db_backup_$(date +%Y%m%d_%H%M%S)${tag:+_$tag}.sql.gz"
done
tmp="$DIR/.$name.tmp"
temps+=("$tmp")
# Error output goes outside the backup directory, so that it can still be written when that disk is full.
work=$(mktemp -d "${TMPDIR:-/tmp}/vl_backup.XXXXXX")
err="$work/err"
gzip_err="$work/gzip.err"
tail_file="$work/tail"

if docker exec "$CONTAINER" pg_dump --username="$DB_USER" --no-password "$DATABASE" 2>"$err" | gzip -6 >"$tmp" 2>"$gzip_err"; then
    status=(0 0)
else
    status=("${PIPESTATUS[@]}")
fi
# gzip first: when gzip cannot write, pg_dump dies of the broken pipe (141) and only gzip's message says why.
if [ "${status[1]}" -ne 0 ]; then
    fail_write gzip "gzip exited with ${status[1]}: $(lines "$gzip_err")" "$tmp"
fi
if [ "${status[0]}" -ne 0 ]; then
    fail pg_dump "pg_dump in \`$CONTAINER\` exited with ${status[0]}: $(tail -n 5 "$err")"
fi

if ! gzip -dc -- "$tmp" 2>"$err" | tail -c 1024 >"$tail_file"; then
    fail check-gzip "the compressed dump does not read back: $(tail -n 3 "$err")"
fi
grep -qF -- "$MARKER" "$tail_file" || fail check-marker "the dump lacks its completion marker (\`$MARKER\`): pg_dump did not finish"
bytes=$(stat -c %s -- "$tmp")
[ "$bytes" -ge "$MIN_BYTES" ] || fail check-size "the dump is $bytes bytes, under the minimum of $MIN_BYTES"

encrypted=false
if [ -n "$ENCRYPT_TO" ]; then
    command -v age >/dev/null || fail encrypt "backups are to be encrypted but \`age\` is not installed on this host (apt-get install age)"
    temps+=("$tmp.age")
    age --encrypt --recipient "$ENCRYPT_TO" --output "$tmp.age" -- "$tmp" 2>"$err" \
        || fail_write encrypt "age failed: $(lines "$err")" "$tmp.age"
    rm -f -- "$tmp"
    tmp="$tmp.age"
    name="$name.age"
    bytes=$(stat -c %s -- "$tmp")
    encrypted=true
fi

sum=$(sha256sum -- "$tmp")
sum=${sum%% *}
temps+=("$DIR/.$name.sha256.tmp")
printf '%s  %s\n' "$sum" "$name" 2>"$err" >"$DIR/.$name.sha256.tmp" \
    || fail_write checksum "the checksum file cannot be written: $(lines "$err")" "$DIR/.$name.sha256.tmp"
sync -- "$tmp" "$DIR/.$name.sha256.tmp" 2>/dev/null || true
mv -f -- "$DIR/.$name.sha256.tmp" "$DIR/$name.sha256"
mv -f -- "$tmp" "$DIR/$name"
sync -- "$DIR" 2>/dev/null || true

# Retention, only now that a new backup exists: the newest backup of each of the last KEEP_DAILY days,
# KEEP_WEEKLY ISO weeks and KEEP_MONTHLY months. Tagged backups (pre-restore, ...) keep their newest KEEP_TAGGED.
pruned=""
remove() {
    rm -f -- "$DIR/$1" "$DIR/$1.sha256"
    pruned+="${pruned:+,}$(json_string "$1")"
}
if [ -z "$tag" ]; then
    days=0 weeks=0 months=0 last_day="" last_week="" last_month=""
    while IFS= read -r f; do
        d=${f:10:8}
        keep=0
        if [ "$f" = "$name" ]; then keep=1; fi
        if [ "$d" != "$last_day" ]; then
            last_day=$d
            if [ "$days" -lt "$KEEP_DAILY" ]; then days=$((days + 1)); keep=1; fi
        fi
        w=$(date -d "$d" +%G-%V)
        if [ "$w" != "$last_week" ]; then
            last_week=$w
            if [ "$weeks" -lt "$KEEP_WEEKLY" ]; then weeks=$((weeks + 1)); keep=1; fi
        fi
        m=${d:0:6}
        if [ "$m" != "$last_month" ]; then
            last_month=$m
            if [ "$months" -lt "$KEEP_MONTHLY" ]; then months=$((months + 1)); keep=1; fi
        fi
        [ "$keep" -eq 1 ] || remove "$f"
    done < <(cd "$DIR" && ls -1 | grep -E '^db_backup_[0-9]{8}_[0-9]{6}\.sql\.gz(\.age)?$' | sort -r)
else
    n=0
    while IFS= read -r f; do
        n=$((n + 1))
        [ "$n" -le "$KEEP_TAGGED" ] || [ "$f" = "$name" ] || remove "$f"
    done < <(cd "$DIR" && ls -1 | grep -E "^db_backup_[0-9]{8}_[0-9]{6}_${tag}\.sql\.gz(\.age)?\$" | sort -r)
fi

copy=none
# One word for the remote shell: `'` … `'`, each `'` inside written `'\''`.
remote_word() {
    local q="'\\''"
    printf "'%s'" "${1//\'/$q}"
}
copy_one() {
    local f=$1 want=${2:-} b host path got
    b=${f##*/}
    case "$COPY_TO" in
        /*)
            mkdir -p -- "$COPY_TO" && cp -- "$f" "$COPY_TO/.$b.tmp" || return 1
            if [ -n "$want" ]; then
                got=$(sha256sum < "$COPY_TO/.$b.tmp") || return 1
                if [ "${got%% *}" != "$want" ]; then
                    rm -f -- "$COPY_TO/.$b.tmp"
                    echo "the sha256 of the copy is ${got%% *}, not $want" >&2
                    return 1
                fi
            fi
            mv -f -- "$COPY_TO/.$b.tmp" "$COPY_TO/$b"
            ;;
        *:*)
            host=${COPY_TO%%:*}
            path=${COPY_TO#*:}
            # The far side renames the file into place only when its own sha256 of what arrived is the one
            # given here (the local file's); otherwise it removes it and the copy fails.
            ssh -o BatchMode=yes -o ConnectTimeout=20 -- "$host" \
                "set -e; d=$(remote_word "$path"); t=\"\$d\"/$(remote_word ".$b.tmp"); mkdir -p -- \"\$d\"; cat > \"\$t\"; if [ -n $(remote_word "$want") ]; then got=\$(sha256sum < \"\$t\"); got=\${got%% *}; if [ \"\$got\" != $(remote_word "$want") ]; then rm -f -- \"\$t\"; echo \"the sha256 on the far side is \$got, not $want\" >&2; exit 3; fi; fi; mv -f -- \"\$t\" \"\$d\"/$(remote_word "$b")" <"$f"
            ;;
        *) return 1 ;;
    esac
}
if [ -n "$COPY_TO" ]; then
    # The sidecar goes last: a file on the far side with a sidecar beside it was verified there.
    if copy_one "$DIR/$name" "$sum" 2>"$err" && copy_one "$DIR/$name.sha256" 2>>"$err"; then
        copy=ok
    else
        copy=failed
    fi
fi

summary=",\"file\":$(json_string "$name"),\"bytes\":$bytes,\"sha256\":\"$sum\",\"encrypted\":$encrypted,\"copy\":\"$copy\",\"pruned\":[$pruned]"
if [ "$copy" = failed ]; then
    finish ok 2 "$summary,\"error\":$(json_string "copy to $COPY_TO failed: $(tail -n 3 "$err")")"
fi
finish ok 0 "$summary"
