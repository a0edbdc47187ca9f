#!/usr/bin/env bash
# Cross-architecture check (issue 10): an i686 and an x86-64 build of
# xtests/xarch share SPSC rings of [u64; 8] and of a u64/u32 record, and
# seqlocks of [u64; 2] and of an f64 quote, through named POSIX shm; every
# value crosses bit-exact, in both directions, and no seqlock read is torn.
# Then records of every length from 0 to 248 bytes cross each way through
# two record rings of 64 words (many laps, padding at every few records:
# i686 seals each header with two 32-bit stores, x86-64 with one 64-bit
# store), and through two lanes of a lane set that the attaching process
# claims and the creator drains and frees; every record arrives bit-exact
# and in order. Then values cross each way through two broadcast rings, one
# of [u64; 8] (counted slots, read through a read-only mapping) and one of
# the record (stamped slots), received one by one and in batches, and a
# burst laps each reader, whose count of the missed must be exact. A ring
# of [usize; 4] (16 bytes on i686, 32 on x86-64) must be refused.
#
# Run from the repository root on an x86-64 Debian machine: `bash .ci/xarch.sh`
# (called by .ci/run). Installs what it needs; idempotent. XARCH_MESSAGES sets
# how many values cross each way per pair (default 1000000); a quarter as
# many records cross each way, and through the lanes in all. 0.5 to 5 s a
# pair on 2 cores, the most when other work makes the two processes take
# turns.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== xarch: %s\n' "$*"; }
trap 'echo "=== xarch: FAILED" >&2' ERR

HOST=x86_64-unknown-linux-gnu
I686=i686-unknown-linux-gnu
MESSAGES=${XARCH_MESSAGES:-1000000}

if [ "$(uname -m)" != x86_64 ]; then
    echo "xarch: runs on an x86-64 host (found $(uname -m))" >&2
    exit 1
fi

step "install: the $I686 target and a 32-bit C runtime"
rustup target add "$I686"
# Rust links i686-unknown-linux-gnu with `cc -m32`, which needs the 32-bit
# glibc start files and libraries (Scrt1.o, crti.o, libc, libgcc_s): without
# them rust-lld reports "cannot open Scrt1.o". On Debian 12 they come with
# gcc-multilib (libc6-dev-i386, lib32gcc-12-dev); the 64-bit kernel runs the
# result as it is. Probed by linking a C program, so a second run installs
# nothing.
probe=$(mktemp -d)
printf 'int main(void) { return 0; }\n' >"$probe/probe.c"
if ! cc -m32 "$probe/probe.c" -o "$probe/probe" 2>/dev/null; then
    if [ "$(id -u)" != 0 ]; then
        echo "xarch: cc -m32 cannot link; install gcc-multilib (as root)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc-multilib
    cc -m32 "$probe/probe.c" -o "$probe/probe"
fi
"$probe/probe"
rm -rf "$probe"
echo "cc -m32 links and runs"

step "build xarch for $HOST and $I686 (release)"
cargo build --release --locked -p xarch --target "$HOST" --target "$I686"
target_dir=$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin64=$target_dir/$HOST/release/xarch
bin32=$target_dir/$I686/release/xarch
file "$bin64" "$bin32" 2>/dev/null || true

step "i686 creates, x86-64 attaches ($MESSAGES values each way, a quarter as many records each way and through the lanes)"
"$bin32" create "$bin64" "$MESSAGES"

step "x86-64 creates, i686 attaches ($MESSAGES values each way, a quarter as many records each way and through the lanes)"
"$bin64" create "$bin32" "$MESSAGES"

# Controls: with equal widths the [usize; 4] ring must attach, so the refusals
# above come from the width, not from the test; and records and lanes cross
# between two processes of one width, so a failure above that does not show
# here comes from the widths.
step "control: i686 with i686, x86-64 with x86-64"
"$bin32" create "$bin32" "$MESSAGES"
"$bin64" create "$bin64" "$MESSAGES"

step "passed: i686 and x86-64 share u64 and f64 payloads, record rings, lanes and broadcast rings both ways; [usize; 4] refused across widths"
