//! What an operator sees of a ring: its counters, read without disturbing
//! either side.

use super::{Ring, Shape, side};
use crate::AttachError;
use crate::layout::{ElementLayout, STAMPED_STRIDE};
use crate::payload::Pod;
use crate::region::ReadRegion;
use crate::sync::Ordering;

/// A snapshot of a ring's shared counters, for a third process (an inspect
/// tool attaches and reads them without making a side: it writes nothing) or
/// for either side. Every field is read once, `Relaxed`, one after another: the
/// figures are each exact when read but not a consistent cut, and a hostile
/// peer can make them anything, so they are for display, never for indexing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Counters {
    /// Elements pushed (`head`), wrapping.
    pub pushed: u32,
    /// Elements popped (`tail`), wrapping.
    pub popped: u32,
    /// Pushes that found the ring full, wrapping.
    pub full: u32,
    /// Wake-ups the producer sent the consumer (the `ready` event's epoch),
    /// wrapping.
    pub consumer_wakes: u32,
    /// Wake-ups the consumer sent a producer waiting for space (the `space`
    /// event's epoch), wrapping.
    pub producer_wakes: u32,
    /// Whether the consumer is announced asleep.
    pub consumer_asleep: bool,
    /// Whether the producer is announced asleep, waiting for space.
    pub producer_asleep: bool,
    /// Whether the producer closed its side.
    pub producer_closed: bool,
    /// Whether the consumer closed its side.
    pub consumer_closed: bool,
}

impl Counters {
    /// Elements waiting: `pushed - popped`, wrapping. More than the capacity
    /// only if a side is corrupt.
    #[must_use]
    pub fn len(&self) -> u32 {
        self.pushed.wrapping_sub(self.popped)
    }

    /// Whether nothing is waiting.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Ring<'_, T> {
    /// The counters as they are now.
    pub(super) fn counters(&self) -> Counters {
        Counters {
            pushed: self.head.load(Ordering::Relaxed),
            popped: self.tail.load(Ordering::Relaxed),
            full: self.full.load(Ordering::Relaxed),
            consumer_wakes: self.ready.epoch(),
            producer_wakes: self.space.epoch(),
            consumer_asleep: self.ready.has_sleeper(),
            producer_asleep: self.space.has_sleeper(),
            producer_closed: side::is_closed(self.producer_closed),
            consumer_closed: side::is_closed(self.consumer_closed),
        }
    }
}

/// The counters of the ring in `region`, whatever its element type, and
/// the elements they count as published (`None`: no possible number; 0
/// while the consumer is ahead of a `head` not yet published): for
/// [`crate::inspect`], which passes the header's own `elem` (its stride
/// checked to be a multiple of 8). Validates the header as
/// [`Spsc::attach`](super::Spsc::attach) does; reads only, no slot.
pub(crate) fn inspect(
    region: ReadRegion<'_>,
    elem: ElementLayout,
) -> Result<(Counters, Option<u32>), AttachError> {
    // A stand-in element type on the same side of `STAMPED_STRIDE` as the
    // header's, so that the view's protocol is the ring's.
    if elem.stamped() {
        inspect_as::<u8>(region, elem)
    } else {
        inspect_as::<[u8; STAMPED_STRIDE as usize + 1]>(region, elem)
    }
}

fn inspect_as<T: Pod>(
    region: ReadRegion<'_>,
    elem: ElementLayout,
) -> Result<(Counters, Option<u32>), AttachError> {
    let (ring, ()) = region.attach::<Shape<T>>(elem)?;
    let counters = ring.counters();
    let fill = ring.published(counters.pushed, counters.popped).ok();
    Ok((counters, fill))
}
