//! A ring's side held with its wake-up, so that dropping it closes the side
//! AND wakes the peer: what the owned Linux handles (the handshake's
//! `Session` and `Connection`, the `tokio` wrappers) are made of.

use core::mem::ManuallyDrop;

use super::Wakeup;
use crate::Pod;
use crate::spsc::{Consumer, Producer};

/// A ring's side whose `close_notify` a [`WakingSide`] calls when dropped.
pub(crate) trait CloseNotify: Sized {
    /// Closes the side and wakes the peer if it sleeps (a failed wake is
    /// dropped: the side is closed all the same, and the peer's watch of
    /// the socket or its timeout still ends its wait).
    fn close_and_wake_peer(self, wakeup: &Wakeup);
}

impl<T: Pod, K> CloseNotify for Consumer<'_, T, K> {
    fn close_and_wake_peer(self, wakeup: &Wakeup) {
        let _ = self.close_notify(wakeup);
    }
}

impl<T: Pod, K> CloseNotify for Producer<'_, T, K> {
    fn close_and_wake_peer(self, wakeup: &Wakeup) {
        let _ = self.close_notify(wakeup);
    }
}

/// A ring's side and its [`Wakeup`]: dropping it closes the side and wakes
/// the peer if it sleeps (`close_notify`), so that a peer blocked without a
/// timeout learns at once, where a bare side's drop only closes.
///
/// The close is a function pointer taken at construction, where the side's
/// bounds are known, so that the types holding a `WakingSide` need none.
pub(crate) struct WakingSide<S> {
    /// Taken only by `drop` or `into_parts`, each the last use.
    side: ManuallyDrop<S>,
    wakeup: Wakeup,
    close: fn(S, &Wakeup),
}

impl<S: CloseNotify> WakingSide<S> {
    pub(crate) fn new(side: S, wakeup: Wakeup) -> Self {
        Self {
            side: ManuallyDrop::new(side),
            wakeup,
            close: S::close_and_wake_peer,
        }
    }
}

impl<S> WakingSide<S> {
    pub(crate) fn side(&self) -> &S {
        &self.side
    }

    pub(crate) fn side_mut(&mut self) -> &mut S {
        &mut self.side
    }

    pub(crate) fn wakeup(&self) -> &Wakeup {
        &self.wakeup
    }

    /// The side, to use, and the wake-up, to wake or sleep through.
    pub(crate) fn parts(&mut self) -> (&mut S, &Wakeup) {
        (&mut self.side, &self.wakeup)
    }

    /// The side and the wake-up back, neither closed nor woken: the side
    /// closes (without a wake) when it is dropped, as any side does.
    #[cfg(feature = "tokio")]
    pub(crate) fn into_parts(self) -> (S, Wakeup) {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so `side` is taken once, here,
        // and nothing reads it after.
        let side = unsafe { ManuallyDrop::take(&mut this.side) };
        // SAFETY: as above: `wakeup` is read out once and `this`, which
        // would drop it, is never dropped.
        let wakeup = unsafe { core::ptr::read(&this.wakeup) };
        (side, wakeup)
    }
}

impl<S> Drop for WakingSide<S> {
    fn drop(&mut self) {
        // SAFETY: `drop` runs once, and nothing uses `side` after it (the
        // other fields do not hold it); `into_parts` never drops `self`.
        let side = unsafe { ManuallyDrop::take(&mut self.side) };
        (self.close)(side, &self.wakeup);
    }
}

impl<S: core::fmt::Debug> core::fmt::Debug for WakingSide<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WakingSide")
            .field("side", &*self.side)
            .field("wakeup", &self.wakeup)
            .finish()
    }
}
