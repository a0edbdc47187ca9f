//! Replays the fuzz targets' seed corpora and every saved crash input under
//! plain `cargo test`.
//!
//! Each target's logic lives once, in `fuzz/src/<target>.rs`, behind
//! `run(data: &[u8])`; the cargo-fuzz wrappers in `fuzz/fuzz_targets/` call it,
//! and this file includes the same files with `#[path]` (the root crate cannot
//! depend on the fuzz crate), and, as `crate::models`, the reference models
//! they use, which the fuzz crate takes from `xtests/models`. For each target it runs every file in
//! `fuzz/corpus/<target>/` and every `fuzz/regressions/<target>-*` file, and
//! reports each input that fails by name. A few built-in inputs run too, and
//! they are all that runs under Miri, which cannot read files.
#![cfg(not(loom))]
// The included modules are public in the fuzz crate, which calls into them.
#![allow(unreachable_pub)]

// Items only the property tests use are unused here.
#[allow(dead_code)]
#[path = "../xtests/models/src/lib.rs"]
mod models;

#[path = "../fuzz/src/support.rs"]
mod support;

#[path = "../fuzz/src/spsc_ops.rs"]
mod spsc_ops;

#[path = "../fuzz/src/spsc_hostile.rs"]
mod spsc_hostile;

#[path = "../fuzz/src/attach.rs"]
mod attach;

#[path = "../fuzz/src/seqlock.rs"]
mod seqlock;

#[path = "../fuzz/src/broadcast.rs"]
mod broadcast;

#[path = "../fuzz/src/broadcast_hostile.rs"]
mod broadcast_hostile;

#[path = "../fuzz/src/bytes.rs"]
mod bytes;

#[path = "../fuzz/src/bytes_hostile.rs"]
mod bytes_hostile;

#[cfg(target_has_atomic = "32")]
#[path = "../fuzz/src/lanes.rs"]
mod lanes;

#[cfg(target_has_atomic = "32")]
#[path = "../fuzz/src/lanes_hostile.rs"]
mod lanes_hostile;

#[cfg(all(feature = "linux", target_os = "linux"))]
#[path = "../fuzz/src/hello.rs"]
mod hello;

/// Inputs that need no files: a few deterministic pseudo-random byte strings
/// of each length, after a given first (configuration) byte.
fn built_in_inputs(first_bytes: core::ops::Range<u8>, len: usize) -> Vec<Vec<u8>> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    first_bytes
        .map(|first| {
            let mut input = vec![first];
            input.extend((1..len).map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            }));
            input
        })
        .collect()
}

/// Files in `dir` (relative to the crate root) whose name starts with
/// `prefix`, sorted; none if the directory does not exist.
#[cfg(not(miri))]
fn files(dir: &str, prefix: &str) -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut found: Vec<_> = entries
        .map(|entry| entry.expect("read a directory entry").path())
        .filter(|path| {
            path.is_file()
                && path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with(prefix) && !name.starts_with('.'))
        })
        .collect();
    found.sort();
    found
}

/// Runs every input through `run`, then fails naming each input that panicked.
fn replay(target: &str, run: fn(&[u8]), inputs: Vec<(String, Vec<u8>)>) {
    let mut failed = Vec::new();
    for (name, data) in &inputs {
        if std::panic::catch_unwind(|| run(data)).is_err() {
            failed.push(name.clone());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs failed: {failed:?}",
        failed.len(),
        inputs.len()
    );
}

/// Every input for `target`: built-in ones, then (unless under Miri) its seed
/// corpus and saved crashes.
fn inputs(target: &str, first_bytes: core::ops::Range<u8>) -> Vec<(String, Vec<u8>)> {
    let len = if cfg!(miri) { 64 } else { 600 };
    let mut all: Vec<_> = built_in_inputs(first_bytes, len)
        .into_iter()
        .enumerate()
        .map(|(i, data)| (format!("built-in #{i}"), data))
        .collect();
    #[cfg(not(miri))]
    {
        let corpus = files(&format!("fuzz/corpus/{target}"), "");
        assert!(
            !corpus.is_empty(),
            "{target}: no seed corpus in fuzz/corpus/{target}"
        );
        let crashes = files("fuzz/regressions", &format!("{target}-"));
        for path in corpus.into_iter().chain(crashes) {
            let data = std::fs::read(&path).expect("read a fuzz input");
            all.push((path.display().to_string(), data));
        }
    }
    #[cfg(miri)]
    let _ = target;
    all
}

/// Configuration bytes for the built-in inputs: under Miri a few, otherwise
/// enough to cover every capacity, element type and storage.
fn configs() -> core::ops::Range<u8> {
    if cfg!(miri) { 0..8 } else { 0..64 }
}

#[test]
fn spsc_ops_inputs_pass() {
    replay("spsc_ops", spsc_ops::run, inputs("spsc_ops", configs()));
}

#[test]
fn spsc_hostile_inputs_pass() {
    replay(
        "spsc_hostile",
        spsc_hostile::run,
        inputs("spsc_hostile", configs()),
    );
}

#[test]
fn attach_inputs_pass() {
    replay("attach", attach::run, inputs("attach", configs()));
}

#[test]
fn seqlock_inputs_pass() {
    replay("seqlock", seqlock::run, inputs("seqlock", configs()));
}

#[test]
fn broadcast_inputs_pass() {
    replay("broadcast", broadcast::run, inputs("broadcast", configs()));
}

#[test]
fn broadcast_hostile_inputs_pass() {
    replay(
        "broadcast_hostile",
        broadcast_hostile::run,
        inputs("broadcast_hostile", configs()),
    );
}

#[test]
fn bytes_inputs_pass() {
    replay("bytes", bytes::run, inputs("bytes", configs()));
}

#[test]
fn bytes_hostile_inputs_pass() {
    replay(
        "bytes_hostile",
        bytes_hostile::run,
        inputs("bytes_hostile", configs()),
    );
}

#[cfg(target_has_atomic = "32")]
#[test]
fn lanes_inputs_pass() {
    replay("lanes", lanes::run, inputs("lanes", configs()));
}

#[cfg(target_has_atomic = "32")]
#[test]
fn lanes_hostile_inputs_pass() {
    replay(
        "lanes_hostile",
        lanes_hostile::run,
        inputs("lanes_hostile", configs()),
    );
}

#[cfg(all(feature = "linux", target_os = "linux"))]
#[test]
fn hello_inputs_pass() {
    replay("hello", hello::run, inputs("hello", configs()));
}
