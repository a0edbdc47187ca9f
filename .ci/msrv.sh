#!/usr/bin/env bash
# Minimum supported Rust version: the `rust-version` in Cargo.toml must build
# and test the crate with every feature, from the committed Cargo.lock.
#
# Run from the repository root: `bash .ci/msrv.sh` (called by .ci/run).
# Installs the toolchain it needs (minimal profile); idempotent. Builds in
# target/msrv (or $CARGO_TARGET_DIR/msrv) so the pinned toolchain's
# artifacts stay warm.
#
# If a dependency's newest release needs a newer Rust, `cargo update` keeps
# the older one (the 2024 edition's resolver honours `rust-version`); to pin
# one by hand: `cargo update -p <crate> --precise <version>`. heapless 0.9
# needs 1.87 and the crate's let chains 1.88.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== msrv: %s\n' "$*"; }
trap 'echo "=== msrv: FAILED" >&2' ERR

msrv=$(sed -n 's/^rust-version = "\([0-9.]*\)"$/\1/p' Cargo.toml)
if [ -z "$msrv" ]; then
    echo "msrv: no rust-version in Cargo.toml" >&2
    exit 1
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/msrv"

step "install: Rust $msrv"
rustup toolchain install "$msrv" --profile minimal

step "Rust $msrv: the no_std core builds"
cargo "+$msrv" build --locked --lib --no-default-features

step "Rust $msrv: every test, every feature"
cargo "+$msrv" test --locked --all-features
