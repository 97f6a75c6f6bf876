#!/usr/bin/env bash
# scripts/package-deb.sh — build the Debian package of opsmon-exporter.
#
#   scripts/package-deb.sh            → target/debian/opsmon-exporter_<version>-1_<arch>.deb
#   scripts/package-deb.sh --no-build  packs the release binary already built
#                                      (the tests do: they run inside cargo)
#
# Builds the release binary, generates the man page and shell completions
# from its flags (--print-man, --print-completions) into target/release/package/,
# then packs with cargo-deb ([package.metadata.deb] in exporter/Cargo.toml).
# cargo-deb is installed from crates.io when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-deb >/dev/null 2>&1; then
    echo "package-deb: installing cargo-deb from crates.io" >&2
    cargo install --locked cargo-deb
fi

build=1
if [ "${1:-}" = "--no-build" ]; then
    build=
    shift
fi
[ -n "$build" ] && cargo build --release --locked -p opsmon-exporter
target_dir="${CARGO_TARGET_DIR:-target}"
bin="$target_dir/release/opsmon-exporter"
if [ ! -x "$bin" ]; then
    echo "package-deb: $bin is missing; run without --no-build" >&2
    exit 1
fi
out="$target_dir/release/package"
mkdir -p "$out"
"$bin" --print-man > "$out/opsmon-exporter.1"
"$bin" --print-completions bash > "$out/opsmon-exporter.bash"
"$bin" --print-completions zsh > "$out/_opsmon-exporter"
"$bin" --print-completions fish > "$out/opsmon-exporter.fish"

# Quiet unless it fails; the path of the package is the only stdout line.
cargo deb --locked -p opsmon-exporter --no-build "$@"
