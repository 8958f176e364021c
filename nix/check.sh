#!/usr/bin/env bash
# Checks nix/ offline, without nixpkgs: every .nix file parses, services.sitesfs declares the
# options listed below (with these types and defaults), and the module's config and the package,
# evaluated through a stub lib (nix/tests/stub.nix), render what nix/tests/eval-config.nix expects.
# Exits non-zero, saying why, on any failure. Needs Debian's nix-bin (scripts/install-deps).
set -euo pipefail

nix_dir=$(cd "$(dirname "$0")" && pwd)
failed=0

for tool in nix-instantiate nix; do
  if ! command -v "$tool" >/dev/null; then
    echo "nix/check.sh: $tool not found; install nix-bin (apt-get install nix-bin)" >&2
    exit 1
  fi
done

# dummy://: evaluation never touches /nix/var (no daemon, no root needed), and anything that would
# copy a file into the store fails instead of passing by accident.
evaluate() {
  nix --extra-experimental-features nix-command eval --store dummy:// --raw -f "$1"
}

while IFS= read -r file; do
  if out=$(nix-instantiate --store dummy:// --parse "$file" 2>&1 >/dev/null); then
    echo "ok   parse ${file#"$nix_dir"/}"
  else
    echo "FAIL parse ${file#"$nix_dir"/}:"
    echo "$out"
    failed=1
  fi
done < <(find "$nix_dir" -name '*.nix' | sort)

# NAME TYPE DEFAULT. A change here is a change of the module's interface: update nix/README.md too.
expected_options='caddyIntegration bool true
dataDir path "/var/lib/sites"
enable bool false
etcdEndpoints listOf str ["http://127.0.0.1:2379"]
hostKeyPins attrsOf str {}
hostKeyPolicy enum accept-new|strict "accept-new"
keysDir nullOr path null
labels listOf str []
loadCredentials listOf str []
monitoringGroup nullOr str null
monitoringMountPoint path "/run/sitesfs-monitor"
mountPoint path "/sites"
package package pkgs.callPackage ./package.nix { }
pollInterval ints.between 0 31536000 60
reloadUnit str "caddy.service"
settings toml value {}
sites attrsOf submodule {}
sites.<name>.branch nullOr str null
sites.<name>.deployKeyRef nullOr str null
sites.<name>.domain str (required)
sites.<name>.path nullOr str null
sites.<name>.repo str (required)
stateDir path "/var/lib/sitesfs"
storeBackend enum file|etcd "file"
watchdogSec nullOr ints.positive null'

if ! actual_options=$(evaluate "$nix_dir/tests/eval-options.nix" 2>&1); then
  echo "FAIL options: evaluating nix/tests/eval-options.nix failed:"
  echo "$actual_options"
  failed=1
elif ! difference=$(diff -u <(echo "$expected_options") <(echo "$actual_options")); then
  echo "FAIL options: services.sitesfs differs from the list in nix/check.sh (- expected, + module):"
  echo "$difference"
  failed=1
else
  echo "ok   options: services.sitesfs declares the $(echo "$expected_options" | wc -l) expected options"
fi

if ! results=$(evaluate "$nix_dir/tests/eval-config.nix" 2>&1); then
  echo "FAIL config: evaluating nix/tests/eval-config.nix failed:"
  echo "$results"
  failed=1
else
  echo "$results"
  if grep -q '^FAIL' <<<"$results"; then failed=1; fi
fi

# The package's source holds every folder the top-level CMakeLists.txt adds: one missing from
# package.nix's fileset builds here and fails only in a Nix build.
while IFS= read -r folder; do
  if grep -qx "      \.\./$folder" "$nix_dir/package.nix"; then
    echo "ok   package source has $folder/"
  else
    echo "FAIL package source: nix/package.nix's fileset lacks ../$folder, which CMakeLists.txt adds"
    failed=1
  fi
done < <(sed -n 's/^ *add_subdirectory(\([a-z_]*\)).*/\1/p' "$nix_dir/../CMakeLists.txt")

if [ "$failed" != 0 ]; then
  echo "nix/check.sh: FAILED" >&2
  exit 1
fi
echo "nix/check.sh: all checks passed"
