//! The ring's errors.

use core::fmt;

#[cfg(doc)]
use super::{Consumer, Producer};
use crate::Corrupted;

/// Why a push failed; the value is handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushError<T> {
    /// Every slot is taken.
    Full(T),
    /// The consumer's counter is impossible; see [`Corrupted`] (whose text
    /// this prints).
    Corrupted(T),
}

impl<T> PushError<T> {
    /// The value that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(value) | Self::Corrupted(value) => value,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Full(_) => "Full",
            Self::Corrupted(_) => "Corrupted",
        }
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(..)", self.kind())
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("ring is full"),
            Self::Corrupted(_) => fmt::Display::fmt(&Corrupted, f),
        }
    }
}

impl<T> core::error::Error for PushError<T> {}

#[cfg(feature = "defmt")]
impl<T> defmt::Format for PushError<T> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=str}(..)", self.kind())
    }
}

/// Why a pop failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PopError {
    /// No element is waiting.
    Empty,
    /// The producer's counter is impossible; see [`Corrupted`] (whose text
    /// this prints).
    Corrupted,
}

impl fmt::Display for PopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("ring is empty"),
            Self::Corrupted => fmt::Display::fmt(&Corrupted, f),
        }
    }
}

impl core::error::Error for PopError {}

impl From<Corrupted> for PopError {
    fn from(Corrupted: Corrupted) -> Self {
        Self::Corrupted
    }
}

/// Why a blocking pop or push ([`Consumer::pop_or_sleep`],
/// [`Producer::push_or_sleep`], and the Linux adapters' `pop_blocking` and
/// `push_blocking`) returned without moving an element: the ring is corrupt,
/// the other side closed it, or the sleeper gave up with `E` (a timeout, a
/// failed system call).
///
/// Transparent: each variant prints, and has the [`source`] of, what it holds.
///
/// [`source`]: core::error::Error::source
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BlockingError<E> {
    /// The other side's counter is impossible; see [`Corrupted`].
    Corrupted,
    /// The other side closed the ring ([`Producer::close`],
    /// [`Consumer::close`], or dropped its handle): a pop found it empty, or
    /// a push found it full, with nobody left to change that.
    Closed,
    /// The sleeper gave up: what it returned.
    Sleep(E),
}

impl<E: fmt::Display> fmt::Display for BlockingError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Corrupted => fmt::Display::fmt(&Corrupted, f),
            Self::Closed => f.write_str("the other side closed the ring"),
            Self::Sleep(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl<E: core::error::Error> core::error::Error for BlockingError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Corrupted | Self::Closed => None,
            Self::Sleep(err) => err.source(),
        }
    }
}

impl<E> From<Corrupted> for BlockingError<E> {
    fn from(Corrupted: Corrupted) -> Self {
        Self::Corrupted
    }
}

/// Why an all-or-nothing batch ([`Producer::push_all`],
/// [`Producer::write_chunk`], [`Consumer::pop_exact`]) moved nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ChunkError {
    /// Only this many slots were free (to push) or elements waiting (to
    /// pop), fewer than asked for.
    TooFewSlots(usize),
    /// The other side's counter is impossible; see [`Corrupted`].
    Corrupted,
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooFewSlots(available) => {
                write!(f, "only {available} slots available in the ring")
            }
            Self::Corrupted => fmt::Display::fmt(&Corrupted, f),
        }
    }
}

impl core::error::Error for ChunkError {}

impl From<Corrupted> for ChunkError {
    fn from(Corrupted: Corrupted) -> Self {
        Self::Corrupted
    }
}
