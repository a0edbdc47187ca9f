#!/usr/bin/env bash
# What crates.io and docs.rs will do with the crate: package it, check a
# publish without uploading, run the packaged crate's own tests from the
# unpacked .crate (its own workspace root, without the repository's fuzz/,
# bench/ or xtests/), and build its docs as docs.rs does (nightly, every
# feature, `--cfg docsrs` for the feature badges).
#
# Run from the repository root: `bash .ci/package.sh` (called by .ci/run).
# Needs crates.io for the dry run's dependency resolution; never publishes.
# Idempotent. The unpacked tests build in target/package-test (or
# $CARGO_TARGET_DIR/package-test), apart from the repository's own builds.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== package: %s\n' "$*"; }
trap 'echo "=== package: FAILED" >&2' ERR

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
pkgid=$(cargo pkgid -p ipc-primitives)
version=${pkgid##*[@#]}
crate_file="$target_dir/package/ipc-primitives-$version.crate"

# --allow-dirty: local runs package the working tree; CI's clone is clean.
step "cargo package (builds the packaged crate)"
cargo package --locked --allow-dirty -p ipc-primitives

step "cargo publish --dry-run"
cargo publish --dry-run --locked --allow-dirty -p ipc-primitives

step "the packaged crate's tests, from the unpacked $crate_file"
unpacked=$(mktemp -d)
trap 'rm -rf "$unpacked"' EXIT
tar -xzf "$crate_file" -C "$unpacked"
# Run from here so that rust-toolchain.toml picks the pinned toolchain; the
# unpacked crate, outside this repository, is its own workspace root.
CARGO_TARGET_DIR="$target_dir/package-test" \
    cargo test --locked --manifest-path "$unpacked/ipc-primitives-$version/Cargo.toml"

step "docs as docs.rs builds them (nightly, all features, --cfg docsrs)"
RUSTDOCFLAGS="--cfg docsrs -Dwarnings" CARGO_TARGET_DIR="$target_dir/docsrs" \
    cargo +nightly doc --locked --all-features --no-deps -p ipc-primitives
