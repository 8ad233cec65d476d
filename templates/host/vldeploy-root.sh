#!/bin/sh
# vldeploy-root: the root-only steps of vldeploy, for its deploy user through `sudo -n`. Installed by
# `vldeploy bootstrap` (root-owned, 0755); edits are overwritten. Every verb checks its arguments: stack names
# are vldeploy's grammar, staged files live under /var/lib/vldeploy/<stack>/, nftables files touch only the
# table `inet vldeploy`, cron entries run as the calling user, never as root.
#
#   vldeploy-root check                          prints `vldeploy-root ok <version>`
#   vldeploy-root firewall-observe               prints what the firewall is now, as `key=value` lines
#   vldeploy-root firewall-prepare STACK ID FILE [HASH]
#                                                copies a staged ruleset into apply ID, saves the table as it
#                                                is (the installed file when it carries HASH), checks both
#   vldeploy-root firewall-arm ID SECONDS        starts the revert timer of apply ID, prints its pid
#   vldeploy-root firewall-load ID               loads apply ID's ruleset (one transaction)
#   vldeploy-root firewall-disarm ID             claims apply ID for its confirmation, stops its timer
#   vldeploy-root firewall-outcome ID            prints how apply ID ended
#   vldeploy-root firewall-prune                 keeps the newest five applies
#   vldeploy-root firewall-record                records the loaded table's listing as the confirmed one
#   vldeploy-root firewall-boot-install STACK FILE   installs a staged ruleset and the unit that loads it at boot
#   vldeploy-root cron-install STACK [NAME] FILE installs a staged file as /etc/cron.d/vldeploy-STACK[-NAME]
#   vldeploy-root cron-remove STACK [NAME]       removes /etc/cron.d/vldeploy-STACK[-NAME]
#
# An apply ID is `apply-<10 digits>-<digits>`; its files live in root's own $APPLIES/ID/: `candidate.nft`,
# `revert.nft`, `timer.pid` and, once decided, `outcome`. The timer and the confirmation race for
# `mkdir decided`: exactly one of them wins.
set -eu
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
umask 022

VERSION=1
TABLE='inet vldeploy'
STATE=/var/lib/vldeploy
RULESET=/etc/vldeploy/firewall.nft
APPLIES=/var/lib/vldeploy/firewall
UNIT=/etc/systemd/system/vldeploy-firewall.service

die() {
	echo "vldeploy-root: $*" >&2
	exit 2
}

# A stack name: 1 to 40 lowercase letters, digits and `-`.
stack_name() {
	case "$1" in
	'' | *[!a-z0-9-]*) die "invalid stack name \`$1\`: use lowercase letters, digits and \`-\`" ;;
	esac
	[ "${#1}" -le 40 ] || die "invalid stack name \`$1\`: at most 40 characters"
}

# A staged file: a relative path of plain names under /var/lib/vldeploy/STACK/, a regular file, no symlink on
# the way. Prints its absolute path.
staged() {
	stack_name "$1"
	case "$2" in
	'' | /* | *[!A-Za-z0-9._/-]* | *..* | */ | *//*) die "invalid staged file \`$2\`: a relative path under $STATE/$1/" ;;
	esac
	base="$STATE/$1"
	path="$base/$2"
	[ -f "$path" ] || die "no staged file \`$path\`"
	real=$(readlink -f -- "$path")
	[ "$real" = "$path" ] || die "\`$path\` goes through a symbolic link"
	printf '%s\n' "$path"
}

# Refuses a ruleset that could touch anything but the table `inet vldeploy`: at the top level only that
# table's own commands, no `include` anywhere.
confined_ruleset() {
	awk -v table="$TABLE" '
		{
			line = $0
			gsub(/"[^"]*"/, "\"\"", line)
			sub(/#.*/, "", line)
			if (line ~ /(^|[^a-z_])include([^a-z_]|$)/) { bad = NR; exit }
			stripped = line
			gsub(/^[ \t]+|[ \t]+$/, "", stripped)
			if (depth == 0 && stripped != "") {
				top = stripped
				sub(/[ \t]*\{.*$/, "", top)
				sub(/;$/, "", top)
				if (top != "" && top != "table " table && top != "delete table " table && top != "flush table " table && top != "add table " table) { bad = NR; exit }
			}
			n = gsub(/\{/, "{", line)
			m = gsub(/\}/, "}", line)
			depth += n - m
			if (depth < 0) { bad = NR; exit }
		}
		END { if (bad) { print bad; exit 1 } if (depth != 0) { print NR; exit 1 } }
	' "$1" >/dev/null || die "\`$1\` touches more than the table \`$TABLE\`"
}

# The name of a cron file: vldeploy-STACK or vldeploy-STACK-NAME.
cron_path() {
	stack_name "$1"
	if [ -n "${2:-}" ]; then
		case "$2" in
		*[!a-z0-9-]*) die "invalid cron entry name \`$2\`: use lowercase letters, digits and \`-\`" ;;
		esac
		printf '/etc/cron.d/vldeploy-%s-%s\n' "$1" "$2"
	else
		printf '/etc/cron.d/vldeploy-%s\n' "$1"
	fi
}

# Refuses a cron file whose entries run as anyone but the caller (the user sudo names).
confined_cron() {
	# Through sudo, the user sudo names; run by root itself (no sudo), root.
	caller="${SUDO_USER:-}"
	if [ -z "$caller" ]; then
		[ "$(id -u)" = 0 ] || die "cron entries are installed by root or through sudo"
		caller=root
	fi
	awk -v user="$caller" '
		/^[ \t]*(#|$)/ { next }
		/^[ \t]*[A-Za-z_][A-Za-z0-9_]*=/ { next }
		{
			if ($1 ~ /^@/) { u = $2 } else { u = $6 }
			if (u != user) { print NR; exit 1 }
		}
	' "$1" >/dev/null || die "\`$1\` has an entry that runs as another user than \`$caller\`"
}

# An apply's directory: the ID checked, printed as $APPLIES/ID.
apply_dir() {
	case "$1" in
	apply-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]-[0-9]*) ;;
	*) die "invalid apply id \`$1\`" ;;
	esac
	case "$1" in
	*[!a-z0-9-]*) die "invalid apply id \`$1\`" ;;
	esac
	printf '%s/%s\n' "$APPLIES" "$1"
}

# Prints the SHA-256 of the loaded table's listing, read from $t.
listing_sha() {
	printf '%s\n' "$t" | sha256sum | cut -d ' ' -f 1
}

verb="${1:-}"
[ $# -gt 0 ] && shift
case "$verb" in
check)
	[ $# -eq 0 ] || die "usage: check"
	echo "vldeploy-root ok $VERSION"
	;;
firewall-observe)
	[ $# -eq 0 ] || die "usage: firewall-observe"
	command -v nft >/dev/null 2>&1 && echo nft=yes
	[ "$(id -u)" = 0 ] && echo root=yes
	if command -v nft >/dev/null 2>&1 && ! e=$(nft list tables 2>&1 >/dev/null); then
		echo "unreadable=$(printf '%s' "$e" | head -n 1)"
	fi
	if t=$(nft list table $TABLE 2>/dev/null); then
		echo table=yes
		printf '%s\n' "$t" | sed -n 's/^[[:space:]]*comment "\(vldeploy sha256:[0-9a-f]*\)".*/live=\1/p' | head -n 1
		echo "listing=$(listing_sha)"
		echo "recorded=$(cat "$APPLIES/listing.sha256" 2>/dev/null)"
	fi
	sed -n 's/^# vldeploy-hash: \(.*\)/file=vldeploy \1/p' "$RULESET" 2>/dev/null | head -n 1
	if [ -d /run/systemd/system ]; then
		echo "boot=systemd:$(systemctl is-enabled vldeploy-firewall.service 2>/dev/null)"
	elif grep -qs "$RULESET" /usr/local/sbin/sandbox-init /etc/rc.local; then
		echo boot=init-script
	else
		echo boot=none
	fi
	for d in "$APPLIES"/apply-*; do
		[ -s "$d/timer.pid" ] && kill -0 "$(cat "$d/timer.pid")" 2>/dev/null && echo "armed=$d"
	done
	last=$(ls -d "$APPLIES"/apply-* 2>/dev/null | sort | tail -n 1)
	[ -n "$last" ] && [ -s "$last/outcome" ] && echo "outcome=$(head -n 1 "$last/outcome")"
	true
	;;
firewall-prepare)
	[ $# -eq 3 ] || [ $# -eq 4 ] || die "usage: firewall-prepare STACK ID FILE [HASH]"
	file=$(staged "$1" "$3")
	d=$(apply_dir "$2")
	confined_ruleset "$file"
	install -d -m 0700 "$APPLIES"
	[ ! -e "$d" ] || die "apply \`$2\` exists already"
	install -d -m 0700 "$d"
	install -m 0600 "$file" "$d/candidate.nft"
	confined_ruleset "$d/candidate.nft"
	hash="${4:-}"
	case "$hash" in
	*[!A-Za-z0-9:]*) hash= ;;
	esac
	if [ -n "$hash" ] && grep -qx "# vldeploy-hash: $hash" "$RULESET" 2>/dev/null; then
		cp "$RULESET" "$d/revert.nft"
	else
		{
			echo "table $TABLE"
			echo "delete table $TABLE"
			nft list table $TABLE 2>/dev/null || true
		} >"$d/revert.nft"
	fi
	nft -c -f "$d/candidate.nft"
	nft -c -f "$d/revert.nft"
	;;
firewall-arm)
	[ $# -eq 2 ] || die "usage: firewall-arm ID SECONDS"
	d=$(apply_dir "$1")
	case "$2" in
	'' | *[!0-9]*) die "invalid delay \`$2\`: whole seconds" ;;
	esac
	[ -f "$d/revert.nft" ] || die "apply \`$1\` is not prepared"
	setsid sh -c 'd=$1; echo $$ > "$d/timer.pid"; sleep "$2"; if mkdir "$d/decided" 2>/dev/null; then nft -f "$d/revert.nft"; echo "reverted $? $(date +%s)" > "$d/outcome"; fi; rm -f "$d/timer.pid"' timer "$d" "$2" </dev/null >/dev/null 2>&1 &
	i=0
	while [ ! -s "$d/timer.pid" ] && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	cat "$d/timer.pid"
	;;
firewall-load)
	[ $# -eq 1 ] || die "usage: firewall-load ID"
	d=$(apply_dir "$1")
	exec nft -f "$d/candidate.nft"
	;;
firewall-disarm)
	[ $# -eq 1 ] || die "usage: firewall-disarm ID"
	d=$(apply_dir "$1")
	if mkdir "$d/decided" 2>/dev/null; then
		echo "confirmed $(date +%s)" >"$d/outcome"
		p=$(cat "$d/timer.pid" 2>/dev/null || true)
		if [ -n "$p" ]; then
			pkill -P "$p" sleep 2>/dev/null || true
			kill "$p" 2>/dev/null || true
		fi
		rm -f "$d/timer.pid"
		echo confirmed
	else
		cat "$d/outcome" 2>/dev/null || echo undecided
	fi
	;;
firewall-outcome)
	[ $# -eq 1 ] || die "usage: firewall-outcome ID"
	d=$(apply_dir "$1")
	cat "$d/outcome" 2>/dev/null || true
	;;
firewall-prune)
	[ $# -eq 0 ] || die "usage: firewall-prune"
	ls -d "$APPLIES"/apply-* 2>/dev/null | sort | head -n -5 | while read -r d; do rm -rf "$d"; done
	true
	;;
firewall-record)
	[ $# -eq 0 ] || die "usage: firewall-record"
	t=$(nft list table $TABLE)
	install -d -m 0700 "$APPLIES"
	listing_sha >"$APPLIES/listing.sha256"
	;;
firewall-boot-install)
	[ $# -eq 2 ] || die "usage: firewall-boot-install STACK FILE"
	file=$(staged "$1" "$2")
	confined_ruleset "$file"
	nft -c -f "$file"
	mkdir -p /etc/vldeploy
	install -o root -g root -m 0600 "$file" "$RULESET.tmp"
	mv -f "$RULESET.tmp" "$RULESET"
	# Without systemd the host's own init loads $RULESET (or nothing does: vldeploy says so).
	[ -d /run/systemd/system ] || exit 0
	cat >"$UNIT.tmp" <<EOF
# Loads vldeploy's firewall (table \`$TABLE\`) at boot, before the network and Docker come up.
# Installed by vldeploy; edits are overwritten.
[Unit]
Description=vldeploy firewall ($TABLE)
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target docker.service shutdown.target
After=nftables.service
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/nft -f $RULESET

[Install]
WantedBy=multi-user.target
EOF
	chmod 0644 "$UNIT.tmp"
	mv -f "$UNIT.tmp" "$UNIT"
	systemctl daemon-reload
	systemctl enable vldeploy-firewall.service >/dev/null 2>&1
	;;
cron-install)
	case $# in
	2)
		target=$(cron_path "$1")
		file=$(staged "$1" "$2")
		;;
	3)
		target=$(cron_path "$1" "$2")
		file=$(staged "$1" "$3")
		;;
	*) die "usage: cron-install STACK [NAME] FILE" ;;
	esac
	confined_cron "$file"
	install -o root -g root -m 0644 "$file" "$target.tmp"
	mv -f "$target.tmp" "$target"
	;;
cron-remove)
	case $# in
	1) target=$(cron_path "$1") ;;
	2) target=$(cron_path "$1" "$2") ;;
	*) die "usage: cron-remove STACK [NAME]" ;;
	esac
	rm -f "$target"
	;;
'' | -h | --help | help)
	sed -n '2,/^set -eu/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
	[ -n "$verb" ] || exit 2
	;;
*)
	die "unknown verb \`$verb\`; \`vldeploy-root help\` lists them"
	;;
esac
