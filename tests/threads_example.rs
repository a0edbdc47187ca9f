//! `examples/threads.rs` end to end, as a user runs it: it exits 0 after the
//! ring's messages all arrived in order and intact and the seqlock's reads
//! were never torn, and says so.
#![cfg(all(feature = "linux", target_os = "linux", not(loom), not(miri)))]

use std::process::Command;

mod example_bin;

use example_bin::Proc;

#[test]
fn the_ring_and_the_seqlock_between_threads_report_nothing_damaged() {
    let dir = example_bin::build(&["threads"]);
    let mut threads = Proc::spawn("threads", Command::new(dir.join("threads")));
    threads.expect(&["spsc:", "arrived in order and intact"]);
    threads.expect(&["seqlock:", "none torn"]);
    threads.exits_with(0);
}
