#!/usr/bin/env bash
# ctest package.check: installs the .deb that package.build left in DEBDIR the way an operator
# does (apt-get install ./sitesfs_*.deb), checks what it installed, mounts with the installed
# config through mount -t fuse.sitesfs, then purges it and checks that nothing is left but what
# docs/packaging.md says a purge keeps. Runs as root on a machine where sitesfs is not installed;
# RUN_SERIAL in tests/CMakeLists.txt, since it changes /usr, /etc, /var/lib and the user database.
#   tests/package/check.sh DEBDIR
set -euo pipefail
debdir=$(cd "${1:?usage: tests/package/check.sh DEBDIR}" && pwd)

fail() { echo "package.check: FAIL: $*" >&2; exit 1; }
for tool in apt-get dpkg-query systemd-analyze mount.fuse3 lintian; do
  command -v "$tool" >/dev/null || fail "$tool not found; run scripts/install-deps"
done
[ "$(id -u)" -eq 0 ] || fail "needs root: it installs and purges a package"
debs=("$debdir"/sitesfs_*.deb)
[ -e "${debs[0]}" ] || fail "no sitesfs_*.deb in $debdir; package.build makes it"
version=$(dpkg-deb -f "${debs[0]}" Version)

# A purge deletes the state dir and the sitesfs user: refuse rather than destroy a real host's.
if dpkg-query -W -f='${Status}' sitesfs 2>/dev/null | grep -q 'ok installed\|config-files'; then
  fail "sitesfs is installed here already; this check installs and purges it, so it runs only where it is not"
fi
for path in /var/lib/sitesfs /etc/sitesfs; do
  [ ! -e "$path" ] || fail "$path exists; a purge would delete it, so this check runs only where it does not"
done
getent passwd sitesfs >/dev/null && fail "a user sitesfs exists; a purge would delete it"
getent group sitesfs >/dev/null && fail "a group sitesfs exists; a purge would delete it"

# Where a package could leave something: the list before, to compare with the list after purge.
roots=(/etc /usr /var/lib /var/cache /var/log /opt /srv)
list_sitesfs_paths() { find "${roots[@]}" -xdev \( -iname '*sitesfs*' -o -path /var/lib/sites -o -path /etc/caddy/sites.conf \) -print 2>/dev/null | sort; }
before=$(list_sitesfs_paths)
had_sites_conf=no; [ -e /etc/caddy/sites.conf ] && had_sites_conf=yes
# The postinst makes the unit's mountpoint /sites when missing, and the purge removes it if empty.
had_mountpoint=no; [ -e /sites ] && had_mountpoint=yes

tmp=$(mktemp -d)
mnt=$tmp/sites
cleanup() {
  status=$?
  if mountpoint -q "$mnt"; then umount "$mnt" || umount -l "$mnt"; fi
  if dpkg-query -W -f='${Status}' sitesfs 2>/dev/null | grep -q 'installed'; then
    apt-get purge -y -q sitesfs >/dev/null 2>&1 || true
  fi
  [ "$had_sites_conf" = yes ] || rm -f /etc/caddy/sites.conf
  [ "$had_mountpoint" = no ] || mkdir -p /sites
  rm -rf "$tmp"
  exit $status
}
trap cleanup EXIT

echo "== apt-get install ./$(basename "${debs[0]}")"
(cd "$debdir" && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "./$(basename "${debs[0]}")")

echo "== what it installed"
out=$(sitesfs --version)
[[ "$out" == *"$version"* ]] || fail "sitesfs --version says '$out', not $version"
[ "$(command -v sitesfs)" = /usr/bin/sitesfs ] || fail "sitesfs in PATH is $(command -v sitesfs), not /usr/bin/sitesfs"
dpkg-query -W -f='${Conffiles}\n' sitesfs | grep -q '^ /etc/sitesfs/sitesfs.toml ' || fail "/etc/sitesfs/sitesfs.toml is not a conffile"
dpkg-query -W -f='${Conffiles}\n' sitesfs | grep -q '^ /etc/caddy/Caddyfile.d/sitesfs.caddyfile ' || fail "the Caddy snippet is not a conffile"
grep -qx 'import /etc/caddy/sites.conf' /etc/caddy/Caddyfile.d/sitesfs.caddyfile || fail "the Caddy snippet does not import /etc/caddy/sites.conf"
[ -f /etc/caddy/sites.conf ] || fail "/etc/caddy/sites.conf is missing: Caddy cannot start on the snippet's import"
[ -f /usr/share/man/man8/sitesfs.8.gz ] || fail "the man page is not installed"
[ "$(stat -c '%a %U' /var/lib/sitesfs)" = "700 root" ] || fail "/var/lib/sitesfs is $(stat -c '%a %U' /var/lib/sitesfs), not 700 root"
[ -d /sites ] || fail "the unit's mountpoint /sites was not made"
[ "$(stat -c '%a %U' /var/lib/sites)" = "755 root" ] || fail "/var/lib/sites is $(stat -c '%a %U' /var/lib/sites), not 755 root"
getent passwd sitesfs | grep -q ':/usr/sbin/nologin$' || fail "no system user sitesfs with nologin: $(getent passwd sitesfs)"
[ "$(id -u sitesfs)" -lt 1000 ] || fail "sitesfs is not a system user (uid $(id -u sitesfs))"
unit=$(dpkg -L sitesfs | grep '/systemd/system/sitesfs.service$') || fail "the package has no sitesfs.service"
[ -f "$unit" ] || fail "$unit is not installed"
# dh_installsystemd took the unit in: prerm stops it, postinst restarts it on upgrade (where it
# is enabled). It silently skips a unit outside the dirs it knows.
grep -q "deb-systemd-invoke stop 'sitesfs.service'" /var/lib/dpkg/info/sitesfs.prerm 2>/dev/null \
  || fail "the prerm does not stop sitesfs.service: dh_installsystemd did not find the unit"
# Not started before it is configured: installed disabled.
[ ! -e /etc/systemd/system/multi-user.target.wants/sitesfs.service ] || fail "the unit was enabled on install"

echo "== systemd-analyze verify $unit"
# caddy.service and network-online.target are only ordered after (After=, Wants=), which verify
# accepts whether or not they exist; every other complaint fails.
verify=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify: $verify"

echo "== mount -t fuse.sitesfs with /etc/sitesfs/sitesfs.toml"
mkdir "$mnt"
# mount(8) runs mount.fuse3, which runs `sitesfs sitesfs MNT -o rw,config=...` from the default
# PATH: the installed /usr/bin/sitesfs (RUN_SERIAL keeps integration.MountHelper's
# /usr/local/sbin/sitesfs link away). Nothing deploys: the site below has no repo.
mount -t fuse.sitesfs sitesfs "$mnt" -o config=/etc/sitesfs/sitesfs.toml
daemon=$(for p in /proc/[0-9]*; do
  { args=$(tr '\0' ' ' < "$p/cmdline"); } 2>/dev/null || continue  # gone since the glob
  [[ "$args" == "sitesfs "*" $mnt "* ]] && echo "${p#/proc/}"
done; true)
[ -n "$daemon" ] || fail "no sitesfs process serves $mnt"
[ "$(readlink "/proc/$daemon/exe")" = /usr/bin/sitesfs ] || fail "$mnt is served by $(readlink "/proc/$daemon/exe"), not /usr/bin/sitesfs"
mkdir "$mnt/blog"
echo blog.example.com > "$mnt/blog/domain"
# ls, not a glob: the listing is what readdir answers, as an operator sees it.
listing=$(ls "$mnt")
grep -qx blog <<<"$listing" || fail "ls $mnt does not show the site made by mkdir: $listing"
[ "$(cat "$mnt/blog/domain")" = blog.example.com ] || fail "$mnt/blog/domain reads '$(cat "$mnt/blog/domain")'"
grep -q '^state: ' "$mnt/blog/status" || fail "$mnt/blog/status has no state: $(cat "$mnt/blog/status")"
[ -e /var/lib/sitesfs/sites/blog.toml ] || fail "the site is not in the installed config's state dir /var/lib/sitesfs"
umount "$mnt"
for _ in $(seq 100); do [ -d "/proc/$daemon" ] || break; sleep 0.1; done
[ ! -d "/proc/$daemon" ] || fail "sitesfs $daemon still runs 10 s after umount"

echo "== apt-get purge sitesfs"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q sitesfs
status=$(dpkg-query -W -f='${Status}' sitesfs 2>/dev/null || true)
[ -z "$status" ] || [[ "$status" == *not-installed ]] || fail "dpkg still has sitesfs after purge: $status"
getent passwd sitesfs >/dev/null && fail "the user sitesfs is left after purge"
getent group sitesfs >/dev/null && fail "the group sitesfs is left after purge"
# docs/packaging.md: a purge keeps /etc/caddy/sites.conf (Caddy may still import it) and
# /var/lib/sites when it holds anything; here it is empty, so it goes.
[ ! -e /sites ] || [ -n "$(ls -A /sites)" ] || fail "the empty mountpoint /sites is left after purge"
expected=$( (echo "$before"; echo /etc/caddy/sites.conf) | sed '/^$/d' | sort -u)
after=$(list_sitesfs_paths)
[ "$after" = "$expected" ] || fail "after purge, expected only:
$expected
left:
$after"
echo "package.check: ok ($version installed, mounted, purged)"
