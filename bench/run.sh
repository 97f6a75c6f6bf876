#!/usr/bin/env bash
# bench/run.sh — self-contained scrape benchmark: installs the peer exporters
# from Debian if missing (without letting Debian start them), builds
# opsmon-exporter and opsmon-bench in release mode, and runs the bench.
# All arguments go to opsmon-bench (see `bench/run.sh --help`); with --full it
# also installs postgres_exporter, redis_exporter, PostgreSQL and Redis (whose
# daemons stay stopped: the bench runs its own on free loopback ports); with
# --probe it installs blackbox_exporter instead (the bench serves the probed
# HTTP target itself).
# The markdown report is on stdout, progress on stderr:
#   bench/run.sh > /tmp/bench.md
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian packages of the exporters benched side by side (host mode). Add one
# here when its Launch is added to opsmon-bench.
PEER_PACKAGES=(
  prometheus-node-exporter
)
# --full also needs the PostgreSQL and Redis peers and the servers the bench
# starts its own copies of (PostgreSQL's contrib, with pg_stat_statements, is
# part of the server package since PostgreSQL 10).
FULL_PACKAGES=(
  prometheus-postgres-exporter
  prometheus-redis-exporter
  postgresql
  redis-server
)
# --probe compares /probe against blackbox_exporter only.
PROBE_PACKAGES=(
  prometheus-blackbox-exporter
)
# --sweep's peers: process-exporter for process groups, mtail for access-log
# routes, postgres_exporter (and PostgreSQL) for business series
# (node_exporter, above, for mounts and connections); rulegen is built below.
SWEEP_PACKAGES=(
  prometheus-process-exporter
  mtail
  prometheus-postgres-exporter
  postgresql
)
build=(-p opsmon-exporter -p opsmon-bench)
for arg in "$@"; do
  case $arg in
    --full)
      # --every-collector adds blackbox_exporter as a fourth peer.
      PEER_PACKAGES+=("${FULL_PACKAGES[@]}" "${PROBE_PACKAGES[@]}")
      break
      ;;
    --sweep | --sweep=*)
      PEER_PACKAGES+=("${SWEEP_PACKAGES[@]}")
      build+=(-p opsmon-rulegen)
      break
      ;;
    --probe)
      PEER_PACKAGES=("${PROBE_PACKAGES[@]}")
      break
      ;;
  esac
done

install_peers() {
  local missing=() pkg
  for pkg in "${PEER_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$pkg")
    fi
  done
  ((${#missing[@]})) || return 0
  if ! command -v apt-get >/dev/null; then
    echo "run.sh: missing ${missing[*]} and no apt-get; install them by hand" >&2
    return 1
  fi
  local sudo=()
  if [[ $(id -u) != 0 ]]; then sudo=(sudo); fi

  # policy-rc.d exiting 101 tells invoke-rc.d/deb-systemd-invoke not to start
  # the daemons: the bench starts its own copies on free loopback ports.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    created_policy=1
    # shellcheck disable=SC2064  # expand now: remove exactly what we created
    trap "${sudo[*]} rm -f $policy" EXIT
  fi
  echo "run.sh: installing ${missing[*]}" >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "${missing[@]}"
  if ((created_policy)); then
    "${sudo[@]}" rm -f "$policy"
    trap - EXIT
  fi
}

install_peers

cargo build --release "${build[@]}"

target_dir="${CARGO_TARGET_DIR:-target}"
# opsmon-bench's own default for --exporter; an explicit --exporter wins.
export OPSMON_BENCH_EXPORTER="${OPSMON_BENCH_EXPORTER:-$target_dir/release/opsmon-exporter}"
exec "$target_dir/release/opsmon-bench" "$@"
