//! A child process that dies with the parent that started it.

use ipc_primitives::linux::SysError;
use rustix::process::{Pid, Signal};

/// Under a parent that put its pid in the environment variable `var`: asks
/// for `SIGTERM` when that parent dies, so that no child outlives it
/// (`prctl(PR_SET_PDEATHSIG)`). `false` if the parent died before the call
/// (then there is no one to serve); `true` otherwise, and without `var`.
pub(crate) fn die_with_parent(var: &str) -> Result<bool, SysError> {
    let Ok(parent) = std::env::var(var) else {
        return Ok(true);
    };
    rustix::process::set_parent_process_death_signal(Some(Signal::TERM))
        .map_err(|errno| SysError::new("prctl(PR_SET_PDEATHSIG)", errno))?;
    Ok(rustix::process::getppid().map(Pid::as_raw_nonzero) == parent.parse().ok())
}
