//! What the loom model files share: the preemption bound, the retry budget,
//! the model runner, and `'static` memory for the threads of one execution.
#![allow(dead_code, reason = "each loom test crate uses a subset of these")]

use ipc_primitives::LoomMemory;

/// Preemptions loom explores per execution when `LOOM_MAX_PREEMPTIONS` is unset.
pub(crate) const PREEMPTIONS: usize = 3;

/// Retries of a full or empty ring before declaring the peer stuck. Under loom a
/// thread that yields is not resumed until its peer has run and, once resumed,
/// does not re-read values it saw before yielding, so a few retries suffice.
pub(crate) const RETRIES: usize = 20;

/// Checks `f` in every interleaving up to the preemption bound
/// (`LOOM_MAX_PREEMPTIONS`, else [`PREEMPTIONS`]).
pub(crate) fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(PREEMPTIONS);
    }
    builder.check(f);
}

/// [`model`] with at most `preemptions`, whatever `LOOM_MAX_PREEMPTIONS`
/// says: for the take-over models, three threads that each make handles,
/// whose executions at 3 preemptions run for over half an hour and fill
/// 20 GB. Each is checked to still fail with the ordering it guards weakened.
pub(crate) fn model_bounded(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    builder.check(f);
}

/// Memory that one execution of a model shares with its threads as
/// `&'static`, freed when the execution ends (dropped last: declare it
/// first, and join every thread that uses it).
pub(crate) struct PerExecution(pub(crate) &'static LoomMemory);

impl PerExecution {
    pub(crate) fn new(len: usize) -> Self {
        Self(Box::leak(Box::new(LoomMemory::new(len))))
    }
}

impl Drop for PerExecution {
    fn drop(&mut self) {
        // SAFETY: the box was leaked in `new`, and it is freed once: every
        // user of the reference (the execution's joined threads, and handles
        // declared after this guard, so dropped before it) is gone.
        drop(unsafe { Box::from_raw(core::ptr::from_ref(self.0).cast_mut()) });
    }
}

/// Structures under loom must be made inside the model, and threads spawned by
/// loom need `'static` data: `value` leaked, for the small structures of one
/// execution.
pub(crate) fn leak<T>(value: T) -> &'static mut T {
    Box::leak(Box::new(value))
}
