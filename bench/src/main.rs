//! `ipc-primitives-bench`: measures this crate's structures against the
//! alternatives, in the same run, and reports medians and ratios.
//!
//! Run it in release mode (the workspace profile has LTO), from the workspace root:
//!
//! ```text
//! cargo run --release -p ipc-primitives-bench -- inproc [--quick] [--json FILE]
//! cargo run --release -p ipc-primitives-bench -- xproc [--quick] [--json FILE]
//! cargo run --release -p ipc-primitives-bench -- seqlock [--quick] [--json FILE]
//! ```
//!
//! Commands:
//! - `inproc`: SPSC throughput of 64-byte messages between two threads pinned
//!   to cores 0 and 1: this crate's ring vs rtrb, crossbeam-queue's
//!   `ArrayQueue` and heapless's `spsc::Queue`, in interleaved rounds.
//! - `xproc`: between processes pinned to cores 0 and 1: round trips
//!   (busy-poll and blocking) against a raw cache-line ping-pong, iceoryx2,
//!   Unix sockets and eventfds; throughput against rtrb, Unix sockets and
//!   pipes; the producer's cost of `push_notify`; the broadcast ring (1, 2
//!   and 4 reader processes), the record ring and fan-in lanes (4 producer
//!   processes); the targets the issues set, as a table. With `--json F`,
//!   also a chart, `F` with the extension `.svg`. See [`xproc`].
//! - `seqlock`: the share of seqlock reads that return a value under a busy
//!   writer (64-byte and 1 KiB values, 1 and 2 readers). See [`seqlock`].
//!
//! Linux only (thread pinning uses `sched_setaffinity`).

mod inproc;
mod loops;
mod pin;
mod report;
mod seqlock;
mod stats;
mod xproc;

use std::{path::PathBuf, process::ExitCode};

const USAGE: &str = "\
usage: ipc-primitives-bench <COMMAND> [--quick] [--json FILE]

commands:
  inproc       SPSC throughput between two pinned threads: this crate vs rtrb,
               crossbeam-queue ArrayQueue and heapless spsc
  xproc        between pinned processes: round trips, throughput and
               producer cost, against the raw cache-line limit, iceoryx2,
               Unix sockets, pipes, eventfds and rtrb; broadcast, record
               ring and fan-in; the targets, as a table
  seqlock      the share of seqlock reads that return a value under a busy
               writer, with try_read and read, 1 and 2 readers

options:
  --quick      3 rounds instead of 11 (a smoke test; figures are not reliable)
  --json FILE  also write the results to FILE as JSON (xproc: and a chart
               to FILE with the extension .svg)
  --only KEYS  xproc: run only these scenarios (comma-separated metric keys
               or group names: latency, blocking, tput, structures, push);
               targets are checked where both of their metrics ran
";

/// Options every command takes.
#[derive(Debug, Default)]
struct Options {
    /// Run few rounds.
    quick: bool,
    /// Where to write the JSON results, if anywhere.
    json: Option<PathBuf>,
    /// The scenarios to run (metric keys); all if empty.
    only: Vec<String>,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut opts = Self::default();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => opts.quick = true,
                "--json" => {
                    let file = args.next().ok_or("`--json` needs a file name")?;
                    opts.json = Some(file.into());
                }
                "--only" => {
                    let keys = args.next().ok_or("`--only` needs scenario keys")?;
                    opts.only = keys.split(',').map(str::to_owned).collect();
                }
                _ => return Err(format!("unknown option `{arg}`")),
            }
        }
        Ok(opts)
    }
}

fn main() -> ExitCode {
    exit_on_panic();
    let mut args = std::env::args().skip(1);
    let command = args.next();
    if let Some("-h" | "--help") = command.as_deref() {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match command.as_deref() {
        // The processes of `xproc`, started by it; not for users.
        Some(xproc::PEER_COMMAND) => return exit_code(xproc::peer_main(args)),
        Some(xproc::LEADER_COMMAND) => return exit_code(xproc::leader_main(args)),
        _ => {}
    }
    let opts = match Options::parse(args) {
        Ok(opts) => opts,
        Err(msg) => return usage_error(&msg),
    };
    let result = match command.as_deref() {
        Some("inproc") => inproc::run(&opts),
        Some("xproc") => xproc::run(&opts),
        Some("seqlock") => seqlock::run(&opts),
        Some(other) => return usage_error(&format!("unknown command `{other}`")),
        None => return usage_error("missing command"),
    };
    exit_code(result)
}

fn exit_code(result: Result<(), Box<dyn std::error::Error>>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(msg: &str) -> ExitCode {
    eprint!("error: {msg}\n\n{USAGE}");
    ExitCode::from(2)
}

/// Makes a panic in any thread end the process: otherwise a consumer that
/// panics on a wrong message would leave its producer spinning on a full ring,
/// and the scope joining them would never return.
fn exit_on_panic() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::exit(101);
    }));
}
