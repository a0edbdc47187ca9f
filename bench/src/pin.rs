//! Pinning threads to CPU cores.

use std::sync::Once;

use rustix::thread::{CpuSet, sched_setaffinity};

/// Pins the calling thread to `core`. If that fails (fewer cores, a
/// restricted cpuset), warns once per process and leaves the thread unpinned.
pub fn to_core(core: usize) {
    static WARNED: Once = Once::new();
    let mut set = CpuSet::new();
    set.set(core);
    if let Err(err) = sched_setaffinity(None, &set) {
        WARNED.call_once(|| {
            eprintln!("warning: cannot pin a thread to core {core} ({err}); running unpinned");
        });
    }
}
