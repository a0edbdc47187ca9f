//! Example binaries for end-to-end tests, built by the test itself (`$CARGO
//! build --example NAME...`, with this test's target dir, profile and
//! features; a no-op when up to date), so a `--test` filter never runs a
//! missing or stale binary.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds `names` in one `cargo build` and returns the directory holding
/// them.
///
/// This test is `<target>[/<triple>]/<profile dir>/deps/<test>`; the target
/// dir is the one holding `CACHEDIR.TAG` (cargo writes it at its root).
pub(crate) fn build(names: &[&str]) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("<target>/<profile>/deps/<test>");
    let above = profile_dir.parent().expect("a target dir");
    let (target_dir, triple) = if above.join("CACHEDIR.TAG").exists() {
        (above, None)
    } else {
        (
            above.parent().expect("<target>/<triple>"),
            above.file_name(),
        )
    };
    // `cargo test` builds examples with the `test` profile (`bench` with
    // `--release`), into `debug` (`release`).
    let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") => "test",
        Some("release") => "bench",
        Some(custom) => custom,
        None => panic!("no profile dir in {}", exe.display()),
    };
    // `default` too: it is part of the library's fingerprint.
    let features: Vec<&str> = [
        ("default", cfg!(feature = "default")),
        ("std", cfg!(feature = "std")),
        ("linux", cfg!(feature = "linux")),
        ("tokio", cfg!(feature = "tokio")),
        ("defmt", cfg!(feature = "defmt")),
        ("portable-atomic", cfg!(feature = "portable-atomic")),
    ]
    .into_iter()
    .filter_map(|(feature, on)| on.then_some(feature))
    .collect();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut build = Command::new(cargo);
    build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", target_dir)
        .args(["build", "--quiet", "--profile", profile])
        .args(["--no-default-features", "--features", &features.join(",")]);
    for name in names {
        build.args(["--example", name]);
    }
    if let Some(triple) = triple {
        build.arg("--target").arg(triple);
    }
    let output = build.output().expect("run cargo build --example");
    assert!(
        output.status.success(),
        "{build:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = profile_dir.join("examples");
    for name in names {
        assert!(
            dir.join(name).exists(),
            "{build:?} succeeded but left no {name}"
        );
    }
    dir
}
