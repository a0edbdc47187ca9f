//! The error every structure shares: a peer broke the protocol.

use core::fmt;

/// A peer left shared memory in a state no correct peer produces: a ring's
/// counters claiming more elements than slots, a consumer ahead of its
/// producer, a record length past the end. The peer is faulty or hostile;
/// this process is unharmed (no undefined behaviour, no out-of-bounds
/// access), and the structure reports it instead of guessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Corrupted;

impl fmt::Display for Corrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("shared memory is corrupted: the peer is faulty or hostile")
    }
}

impl core::error::Error for Corrupted {}
