#!/usr/bin/env bash
# scripts/test.sh — the whole test suite, on a fresh Debian machine or a dev box.
#
# 1. Installs the system packages the tests drive, when missing (apt-get,
#    non-interactive). A temporary policy-rc.d keeps Debian from starting
#    their daemons: the tests start their own on free loopback ports.
# 2. Builds everything once in release (the e2e tests and bench/ share it).
# 3. Runs every test of the workspace.
#
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

# command → Debian package
declare -A PACKAGES=(
  [promtool]=prometheus
  [prometheus-node-exporter]=prometheus-node-exporter
  [prometheus-postgres-exporter]=prometheus-postgres-exporter
  [prometheus-redis-exporter]=prometheus-redis-exporter
  [prometheus-blackbox-exporter]=prometheus-blackbox-exporter
  [amtool]=prometheus-alertmanager
  [systemd-analyze]=systemd
  [node]=nodejs
  [npm]=npm
  [redis-server]=redis-server
  [redis-cli]=redis-tools
  [psql]=postgresql-client
  [openssl]=openssl
  [chromium]=chromium
  [dpkg-deb]=dpkg
  [python3]=python3
)
missing=()
for tool in "${!PACKAGES[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${PACKAGES[$tool]}")
done
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
# tests/tests/kubernetes.rs installs kubernetes-validate (PyPI) into a venv.
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)

if [ ${#missing[@]} -gt 0 ]; then
  echo "scripts/test.sh: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  guard=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    guard=1
  fi
  trap '[ -n "$guard" ] && $SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# tests/tests/package.rs builds the Debian package with cargo-deb (crates.io).
command -v cargo-deb >/dev/null 2>&1 || cargo install --locked cargo-deb
# Every target in one build: the tests' dev-dependencies change the features of
# shared crates (libc, syn, …), so building the binaries alone would compile
# those, and every workspace crate after them, a second time for the tests.
cargo build --release --workspace --all-targets
cargo test --release --workspace "$@"
