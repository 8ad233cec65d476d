#!/bin/sh
# vldeploy-root: the root-only steps of vldeploy, for its deploy user through `sudo -n`. Installed by
# `vldeploy bootstrap` (root-owned, 0755); edits are overwritten. Every verb checks its arguments: stack names
# are vldeploy's grammar, staged files live under /var/lib/vldeploy/<stack>/, nftables files touch only the
# table `inet vldeploy`, cron entries run as the calling user, never as root.
#
#   vldeploy-root check                          prints `vldeploy-root ok <version>`
#   vldeploy-root nft-list                       lists the table `inet vldeploy`
#   vldeploy-root nft-check STACK FILE           checks a staged ruleset with `nft -c`
#   vldeploy-root nft-apply STACK FILE           loads a staged ruleset (one transaction)
#   vldeploy-root nft-delete                     deletes the table `inet vldeploy`
#   vldeploy-root firewall-boot-install STACK FILE   installs a staged ruleset and the unit that loads it at boot
#   vldeploy-root firewall-boot-remove           removes them
#   vldeploy-root cron-install STACK [NAME] FILE installs a staged file as /etc/cron.d/vldeploy-STACK[-NAME]
#   vldeploy-root cron-remove STACK [NAME]       removes /etc/cron.d/vldeploy-STACK[-NAME]
set -eu
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
umask 022

VERSION=1
TABLE='inet vldeploy'
STATE=/var/lib/vldeploy
RULESET=/etc/vldeploy/firewall.nft
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
	caller="${SUDO_USER:-}"
	[ -n "$caller" ] && [ "$caller" != root ] || die "cron entries are installed for a sudo caller other than root"
	awk -v user="$caller" '
		/^[ \t]*(#|$)/ { next }
		/^[ \t]*[A-Za-z_][A-Za-z0-9_]*=/ { next }
		{
			if ($1 ~ /^@/) { u = $2 } else { u = $6 }
			if (u != user) { print NR; exit 1 }
		}
	' "$1" >/dev/null || die "\`$1\` has an entry that runs as another user than \`$caller\`"
}

verb="${1:-}"
[ $# -gt 0 ] && shift
case "$verb" in
check)
	[ $# -eq 0 ] || die "usage: check"
	echo "vldeploy-root ok $VERSION"
	;;
nft-list)
	[ $# -eq 0 ] || die "usage: nft-list"
	exec nft list table $TABLE
	;;
nft-check | nft-apply)
	[ $# -eq 2 ] || die "usage: $verb STACK FILE"
	file=$(staged "$1" "$2")
	confined_ruleset "$file"
	if [ "$verb" = nft-check ]; then exec nft -c -f "$file"; fi
	exec nft -f "$file"
	;;
nft-delete)
	[ $# -eq 0 ] || die "usage: nft-delete"
	exec nft delete table $TABLE
	;;
firewall-boot-install)
	[ $# -eq 2 ] || die "usage: firewall-boot-install STACK FILE"
	file=$(staged "$1" "$2")
	confined_ruleset "$file"
	nft -c -f "$file"
	mkdir -p /etc/vldeploy
	install -o root -g root -m 0600 "$file" "$RULESET.tmp"
	mv -f "$RULESET.tmp" "$RULESET"
	cat >"$UNIT.tmp" <<EOF
# Loads vldeploy's firewall (table \`$TABLE\`) at boot, before the network and Docker come up.
# Installed by vldeploy-root; edits are overwritten.
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
firewall-boot-remove)
	[ $# -eq 0 ] || die "usage: firewall-boot-remove"
	systemctl disable vldeploy-firewall.service >/dev/null 2>&1 || true
	rm -f "$UNIT" "$RULESET"
	systemctl daemon-reload
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
