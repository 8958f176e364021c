#!/usr/bin/env bash
# ctest package.build: builds the Debian package with scripts/package into OUTDIR and holds it
# to lintian: an error or a warning that debian/sitesfs.lintian-overrides does not explain fails.
# package.check then installs what lands in OUTDIR.
#   tests/package/build.sh OUTDIR
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: tests/package/build.sh OUTDIR}

# As nix/check.sh: a missing tool fails, locally and in CI alike, naming what to install.
for tool in dpkg-buildpackage dh lintian; do
  command -v "$tool" >/dev/null || { echo "package.build: $tool not found; run scripts/install-deps" >&2; exit 1; }
done

rm -rf "$out"
start=$(date +%s)
"$here/scripts/package" "$out"
echo "package.build: built in $(( $(date +%s) - start )) s"

debs=("$out"/sitesfs_*.deb)
[ -e "${debs[0]}" ] || { echo "package.build: no sitesfs_*.deb in $out" >&2; exit 1; }
ls "$out"/sitesfs-dbgsym_*.deb >/dev/null || { echo "package.build: no dbgsym package in $out" >&2; exit 1; }
# Pedantic and info tags are shown, not failed on: they are advice. lintian leaves its caches
# (mldbm-elf-*) in TMPDIR, so it gets one of its own, removed afterwards.
lintian_tmp=$(mktemp -d)
trap 'rm -rf "$lintian_tmp"' EXIT
TMPDIR=$lintian_tmp lintian --fail-on error,warning --display-info "$out"/*.changes
echo "package.build: lintian passed"
