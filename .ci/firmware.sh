#!/usr/bin/env bash
# Firmware checks (issue 10), from the repository root: `bash .ci/firmware.sh`
# (called by .ci/run). Installs the targets and llvm-tools it needs;
# idempotent. It checks, and fails loudly otherwise, that:
#  1. the `portable-atomic` feature builds where it means something (targets
#     without compare-and-swap, with portable-atomic's single-core cfg), and
#     without that cfg fails with portable-atomic's diagnostic naming the fix;
#  2. examples/firmware (a static ring between SysTick and the main loop,
#     cortex-m-rt, defmt) builds for thumbv7em-none-eabihf and
#     thumbv8m.main-none-eabihf, is fmt- and clippy-clean, and its `RING`
#     static lives in .bss (no flash image, no copy at start-up);
#  3. code size next to heapless: xtests/codesize's minimal binaries on
#     thumbv7em (opt-level "s", fat LTO), printed as a table;
#  4. on thumbv6m with portable-atomic's `critical-section` feature turned
#     on, push and pop hold no `cpsid` (ring words stay plain ldr/str: a
#     critical section would protect nothing against another core).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== firmware: %s\n' "$*"; }
fail() {
    echo "firmware: FAILED: $*" >&2
    exit 1
}
trap 'echo "=== firmware: FAILED (line $LINENO)" >&2' ERR

FIRMWARE_TARGETS=(thumbv7em-none-eabihf thumbv8m.main-none-eabihf)
NO_CAS_TARGETS=(thumbv6m-none-eabi riscv32imc-unknown-none-elf)

step "install: targets and llvm-tools"
rustup target add "${FIRMWARE_TARGETS[@]}" "${NO_CAS_TARGETS[@]}"
rustup component add llvm-tools
host=$(rustc -vV | sed -n 's/^host: //p')
tools=$(rustc --print sysroot)/lib/rustlib/$host/bin
NM=$tools/llvm-nm
SIZE=$tools/llvm-size
OBJDUMP=$tools/llvm-objdump
for tool in "$NM" "$SIZE" "$OBJDUMP"; do
    [ -x "$tool" ] || fail "$tool missing after 'rustup component add llvm-tools'"
done

# The target directory of the workspace in directory $1.
target_dir() {
    (cd "$1" && cargo metadata --format-version 1 --no-deps) |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
}
# Runs cargo in directory $1, where its `.cargo/config.toml` applies (the
# embedded target and the linker scripts): cargo reads configuration from
# the directory it runs in, not from the manifest's.
cargo_in() {
    (cd "$1" && shift && cargo "$@")
}
# Bytes in section $2 of ELF $1 (0 if absent).
section_size() {
    "$SIZE" -A "$1" | awk -v name="$2" '$1 == name { size = $2 } END { print size + 0 }'
}
# Size in bytes of the symbol of ELF $1 whose demangled name matches the
# extended regular expression $2 (a hash suffix follows it).
symbol_size() {
    local hex
    hex=$("$NM" -C -S "$1" | grep -E " $2::h[0-9a-f]+$" | awk '{ print $2 }' | head -n 1)
    [ -n "$hex" ] || fail "no symbol $2 in $1"
    echo $((16#$hex))
}
# Fails unless the static whose demangled name matches $2 is in .bss of $1.
check_in_bss() {
    local line type
    line=$("$NM" -C -S "$1" | grep -E " $2::h[0-9a-f]+$" | head -n 1)
    [ -n "$line" ] || fail "no static $2 in $1"
    type=$(awk '{ print $3 }' <<<"$line")
    case $type in
    b | B) echo "  $2: $((16#$(awk '{ print $2 }' <<<"$line"))) bytes in .bss (nm type $type)" ;;
    *) fail "$2 is not in .bss (nm type $type: d/D is .data, an image in flash copied at start-up): $line" ;;
    esac
}

# 1. Targets without compare-and-swap take the take-once flag from
# portable-atomic, which needs its single-core cfg (or its critical-section
# feature and an implementation) there. On targets with CAS the feature
# changes nothing, so it is not built there. A target dir of its own:
# RUSTFLAGS would otherwise invalidate the main build's artifacts.
step "portable-atomic feature on ${NO_CAS_TARGETS[*]} (single-core cfg)"
pa_target=$(target_dir .)/portable-atomic
for target in "${NO_CAS_TARGETS[@]}"; do
    RUSTFLAGS="--cfg portable_atomic_unsafe_assume_single_core" CARGO_TARGET_DIR=$pa_target \
        cargo build --locked -p ipc-primitives --lib --no-default-features --features portable-atomic --target "$target"
done

step "portable-atomic feature without the cfg: the error names the fix"
if log=$(cargo build --locked -p ipc-primitives --lib --no-default-features --features portable-atomic \
    --target thumbv6m-none-eabi 2>&1); then
    fail "built on thumbv6m without a way to swap atomically"
fi
grep -E '^error.*requires atomic CAS|consider enabling' <<<"$log" || fail "unexpected error: $log"
grep -q 'portable_atomic_unsafe_assume_single_core' <<<"$log" ||
    fail "the error no longer names the cfg: $log"

# 2. The firmware example.
step "firmware example: fmt, clippy, build for ${FIRMWARE_TARGETS[*]}"
firmware=examples/firmware
cargo_in "$firmware" fmt --check
cargo_in "$firmware" clippy --locked --release -- -D warnings
fw_target=$(target_dir "$firmware")
for target in "${FIRMWARE_TARGETS[@]}"; do
    cargo_in "$firmware" build --locked --release --target "$target"
    elf=$fw_target/$target/release/ipc-primitives-firmware
    echo "$target: .text $(section_size "$elf" .text), .data $(section_size "$elf" .data), .bss $(section_size "$elf" .bss) bytes"
    check_in_bss "$elf" 'ipc_primitives_firmware::RING'
done

# 3. Code size next to heapless.
step "code size on thumbv7em-none-eabihf (opt-level \"s\", fat LTO): push + pop next to heapless"
codesize=xtests/codesize
cargo_in "$codesize" fmt --check
cargo_in "$codesize" clippy --locked --release --bins -- -D warnings
cargo_in "$codesize" build --locked --release --bins
cs_dir=$(target_dir "$codesize")/thumbv7em-none-eabihf/release
base_text=$(section_size "$cs_dir/baseline" .text)
check_in_bss "$cs_dir/spsc" 'spsc::RING'
check_in_bss "$cs_dir/heapless" 'heapless::__cortex_m_rt_main_trampoline::QUEUE'
printf '\n%-36s %6s %12s %6s %6s %6s %6s\n' binary .text "vs baseline" push pop .data .bss
printf '%-36s %6s %12s %6s %6s %6s %6s\n' "baseline (no queue)" "$base_text" - - - \
    "$(section_size "$cs_dir/baseline" .data)" "$(section_size "$cs_dir/baseline" .bss)"
for bin in spsc heapless; do
    elf=$cs_dir/$bin
    text=$(section_size "$elf" .text)
    case $bin in
    spsc) label="ipc-primitives StaticSpsc<u32, 16>" ;;
    heapless) label="heapless 0.9 Queue<u32, 16>" ;;
    esac
    printf '%-36s %6s %12s %6s %6s %6s %6s\n' "$label" "$text" "+$((text - base_text))" \
        "$(symbol_size "$elf" "$bin::push")" "$(symbol_size "$elf" "$bin::pop")" \
        "$(section_size "$elf" .data)" "$(section_size "$elf" .bss)"
done
echo "(push and pop: their out-of-line functions; the rest of the delta is set-up in main:"
echo " taking both sides, which writes the header, against heapless's split)"

# 4. Plain loads and stores on thumbv6m even with critical sections on.
step "thumbv6m with portable-atomic/critical-section: push and pop have no cpsid"
cargo_in "$codesize" build --locked --release --bin spsc \
    --target thumbv6m-none-eabi --features critical-section
elf=$(target_dir "$codesize")/thumbv6m-none-eabi/release/spsc
disassembly=$("$OBJDUMP" -d --no-show-raw-insn -C "$elf")
# The bodies of push and pop: from their label to the next blank line.
hot=$(awk '/^[0-9a-f]+ <spsc::(push|pop)::/ { body = 1; next } /^$/ { body = 0 } body' <<<"$disassembly")
[ -n "$hot" ] || fail "push and pop not found in $elf"
if grep -E '\bcps(id|ie)\b' <<<"$hot"; then
    fail "push or pop enters a critical section: ring words must be plain loads and stores"
fi
loads=$(grep -cE '\bldr\b' <<<"$hot" || true)
stores=$(grep -cE '\bstr\b' <<<"$hot" || true)
fences=$(grep -cE '\bdmb\b' <<<"$hot" || true)
echo "  push + pop: $(wc -l <<<"$hot") instructions, $loads ldr, $stores str, $fences dmb, 0 cpsid"
# Without any cpsid in the binary the feature would not be on, and the check
# above would prove nothing: the take-once flags must use the critical section.
with_cpsid=$(awk '/^[0-9a-f]+ <.*>:$/ { name = substr($2, 2, length($2) - 3) }
    /[[:space:]]cpsid[[:space:]]/ { print name }' <<<"$disassembly" | sort | uniq -c)
[ -n "$with_cpsid" ] || fail "no cpsid anywhere: portable-atomic's critical-section feature is not on"
echo "  cpsid elsewhere (the take-once flags, process-local), count and function:"
echo "$with_cpsid"

step "passed"
