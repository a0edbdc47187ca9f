//! A read-only look at any region this crate creates, whatever its kind and
//! element type: what an operator's inspect tool prints.
//!
//! [`inspect`] reads the header, learns the kind, element layout, capacity
//! and type tag from it, attaches as that kind (the same validation
//! `attach` makes, against the header's own element layout and tag) and
//! reads the structure's live figures: an SPSC ring's counters, a record
//! ring's, a broadcast writer's position, a seqlock's sequence, each fan-in
//! lane's state and counters, or the parts of a region laid out by a
//! [`Plan`](crate::parts::Plan), each inspected in turn
//! ([`Inspection::take_parts`]).
//!
//! ```
//! use ipc_primitives::inspect::{Figures, inspect};
//! use ipc_primitives::spsc::Spsc;
//! use ipc_primitives::{Kind, Line, ReadRegion, Region};
//! use zerocopy::IntoBytes;
//!
//! let mut mem = vec![Line::ZERO; Line::count_for(Spsc::<u64>::required_size(8).unwrap())];
//! let mut tx = Spsc::<u64>::create(Region::new(mem.as_mut_bytes()), 8)?.into_producer();
//! tx.try_push(7)?;
//! drop(tx);
//!
//! let seen = inspect(ReadRegion::from(Region::new(mem.as_mut_bytes())));
//! assert_eq!(seen.header().unwrap().kind(), Some(Kind::Spsc));
//! let Some(Figures::Spsc { fill, .. }) = seen.figures() else { panic!("an SPSC ring") };
//! assert_eq!(*fill, 1);
//! assert!(seen.problem().is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Read-only, and not trusting
//! Everything is read with relaxed loads (an `Acquire` one for a lane's
//! state word, as its consumer reads it) and fences, never a store: the
//! region may be a `PROT_READ` mapping of a live structure, which an
//! inspection never disturbs. Every value is treated as a hostile peer's:
//! a header or counter no creator writes yields a [`Problem`], never a
//! panic, and the figures, read one after another, are each exact when
//! read but not a consistent cut.
//!
//! Broadcast readers keep their cursors in their own processes, so a
//! reader's lag is not in shared memory: only the writer's position is
//! shown.

#[cfg(all(test, not(loom)))]
mod tests;

use core::fmt;

use crate::header::Snapshot;
#[cfg(any(loom, target_has_atomic = "32"))]
use crate::lanes::{self, LaneState};
use crate::layout::{ElementLayout, Kind, MAGIC, MAX_ELEMENT_SIZE};
use crate::region::parts::{self, Listing};
use crate::{AttachError, PartInfo, ReadRegion, broadcast, bytes, seqlock, spsc};

/// What a region's header records, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Header {
    /// The magic word ([`byte_order`](Self::byte_order) tells what it means).
    pub magic: u32,
    /// The layout version ([`ABI_VERSION`](crate::ABI_VERSION) in this build).
    pub version: u32,
    /// The structure kind, raw ([`kind`](Self::kind)).
    pub kind: u32,
    /// The element's size and slot stride.
    pub elem: ElementLayout,
    /// The capacity field: slots (words for a record ring, parts for a
    /// layout directory, lanes and their size packed for fan-in lanes).
    pub capacity: u32,
    /// The type tag (0: none).
    pub tag: u64,
}

impl Header {
    /// The structure kind, if the raw value names one.
    pub const fn kind(&self) -> Option<Kind> {
        Kind::from_raw(self.kind)
    }

    /// Whether the magic word is this crate's, byte-swapped, or something
    /// else.
    pub const fn byte_order(&self) -> ByteOrder {
        match self.magic {
            MAGIC => ByteOrder::Native,
            magic if magic == MAGIC.swap_bytes() => ByteOrder::Swapped,
            _ => ByteOrder::Unknown,
        }
    }
}

impl From<Snapshot> for Header {
    fn from(s: Snapshot) -> Self {
        Self {
            magic: s.magic,
            version: s.version,
            kind: s.kind,
            elem: s.elem,
            capacity: s.capacity,
            tag: s.tag,
        }
    }
}

/// The byte order a header's magic word shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ByteOrder {
    /// This process's: the region can be read.
    Native,
    /// The other one: created by a process of the other byte order.
    Swapped,
    /// Not this crate's magic at all.
    Unknown,
}

impl fmt::Display for ByteOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Native => "native",
            Self::Swapped => "swapped",
            Self::Unknown => "unknown",
        })
    }
}

/// A structure's live figures, per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Figures {
    /// An SPSC ring.
    Spsc {
        /// Its counters.
        counters: spsc::Counters,
        /// Elements waiting, as `head` counts them (0 while the consumer
        /// is ahead of a `head` not yet published; `head - tail`, wrapping,
        /// if the counters are impossible).
        fill: u32,
    },
    /// A record ring's counters (fill: [`bytes::Counters::used_words`]).
    Records(bytes::Counters),
    /// A broadcast ring: its writer's figures.
    Broadcast {
        /// Messages published, wrapping: the writer's position.
        published: u32,
        /// Wake-ups the writer sent to sleeping readers, wrapping.
        wakes: u32,
    },
    /// A seqlock.
    SeqLock {
        /// Twice the writes completed, plus one while a write is under way
        /// (`u32` on targets without 64-bit atomics).
        sequence: u64,
        /// Whether a write is under way (or its writer died in it).
        writing: bool,
    },
    /// Fan-in lanes ([`Inspection::lane`] for each).
    Lanes {
        /// Lanes in the set.
        lanes: u32,
        /// Words per lane.
        words: u32,
    },
    /// A layout directory ([`Inspection::take_parts`] for the parts).
    Layout {
        /// Parts it lists.
        parts: u32,
    },
}

/// What is wrong with a region: a header no creator writes, or figures no
/// pair of sides produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Problem {
    /// The header was refused as `attach` refuses it (no complete header, a
    /// foreign magic, another version, an invalid capacity, a region too
    /// small for what the header describes...).
    Header(AttachError),
    /// The header names no kind of structure this build knows.
    UnknownKind(u32),
    /// The element layout is none a type has: the stride is not the size
    /// rounded up to 8.
    Element(ElementLayout),
    /// The counters claim more than the structure holds.
    Counters,
    /// A lane's counters claim more than it holds.
    Lane(u32),
    /// A part of a layout: its directory entry is impossible, or the part
    /// holds another kind than the directory lists.
    Part {
        /// The part's index.
        index: u32,
        /// What is wrong.
        what: &'static str,
    },
}

impl Problem {
    /// Whether the region holds no complete header yet (all zero, or a
    /// creator writing it now): not corruption, a region not (yet) made.
    pub const fn is_uninitialized(&self) -> bool {
        matches!(self, Self::Header(AttachError::NotInitialized))
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Header(err) => write!(f, "header: {err}"),
            Self::UnknownKind(kind) => write!(f, "header: unknown structure kind {kind}"),
            Self::Element(elem) => write!(
                f,
                "header: element of {} bytes with stride {} (a stride must be the size rounded up to 8)",
                elem.size, elem.stride
            ),
            Self::Counters => f.write_str("counters claim more than the capacity"),
            Self::Lane(lane) => write!(f, "lane {lane}: counters or state impossible"),
            Self::Part { index, what } => write!(f, "part {index}: {what}"),
        }
    }
}

impl core::error::Error for Problem {}

/// One fan-in lane, as read.
#[cfg(any(loom, target_has_atomic = "32"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Lane {
    /// Its state word.
    pub state: LaneState,
    /// Its counters (the `wakes` are the shared doorbell's).
    pub counters: bytes::Counters,
}

/// What [`inspect`] found in a region.
pub struct Inspection<'a> {
    header: Option<Header>,
    figures: Option<Figures>,
    problem: Option<Problem>,
    detail: Detail<'a>,
}

/// What an inspection keeps to read more on demand.
enum Detail<'a> {
    None,
    #[cfg(any(loom, target_has_atomic = "32"))]
    Lanes(lanes::View<'a>),
    Layout(Listing<'a>),
}

impl Detail<'_> {
    /// The first lane whose counters are impossible (every state word
    /// decodes to a state).
    fn problem(&self) -> Option<Problem> {
        match self {
            #[cfg(any(loom, target_has_atomic = "32"))]
            Detail::Lanes(view) => (0..view.geometry().0)
                .find(|&lane| {
                    view.inspect_lane(lane)
                        .is_some_and(|(_, _, possible)| !possible)
                })
                // Below `MAX_LANES`.
                .map(|lane| Problem::Lane(lane as u32)),
            _ => None,
        }
    }
}

impl fmt::Debug for Inspection<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inspection")
            .field("header", &self.header)
            .field("figures", &self.figures)
            .field("problem", &self.problem)
            .finish_non_exhaustive()
    }
}

impl<'a> Inspection<'a> {
    /// The header, if one could be copied out (the region is aligned, holds
    /// it, and no creator was writing it).
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// The structure's figures, if its header was valid.
    pub fn figures(&self) -> Option<&Figures> {
        self.figures.as_ref()
    }

    /// The first thing found wrong, if any.
    pub fn problem(&self) -> Option<&Problem> {
        self.problem.as_ref()
    }

    /// Lane `lane` of fan-in lanes, read now (`None` past the last lane or
    /// for another kind).
    #[cfg(any(loom, target_has_atomic = "32"))]
    pub fn lane(&self, lane: usize) -> Option<Lane> {
        let Detail::Lanes(view) = &self.detail else {
            return None;
        };
        let (state, counters, _) = view.inspect_lane(lane)?;
        Some(Lane { state, counters })
    }

    /// The parts of a layout directory, each inspected as it is reached
    /// (`None` for another kind, or once taken: each part is handed out
    /// once, as [`Plan::attach`](crate::parts::Plan::attach) does).
    pub fn take_parts(&mut self) -> Option<Parts<'a>> {
        match core::mem::replace(&mut self.detail, Detail::None) {
            Detail::Layout(listing) => Some(Parts(listing)),
            other => {
                self.detail = other;
                None
            }
        }
    }

    fn refused(header: Option<Header>, problem: Problem) -> Self {
        Self {
            header,
            figures: None,
            problem: Some(problem),
            detail: Detail::None,
        }
    }
}

/// The parts of a layout directory ([`Inspection::take_parts`]).
pub struct Parts<'a>(Listing<'a>);

impl fmt::Debug for Parts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parts")
            .field("count", &self.0.listed())
            .finish_non_exhaustive()
    }
}

/// One part of a layout directory.
#[derive(Debug)]
#[non_exhaustive]
pub struct Part<'a> {
    /// Its index in the directory.
    pub index: u32,
    /// The directory's entry for it.
    pub listed: PartInfo,
    /// The part inspected; an entry that places the part where no plan
    /// could (overlapping, past the region) has none, and a
    /// [`Problem::Part`] instead.
    pub inspection: Result<Inspection<'a>, Problem>,
}

impl<'a> Iterator for Parts<'a> {
    type Item = Part<'a>;

    fn next(&mut self) -> Option<Part<'a>> {
        let index = self.0.position();
        let (listed, region) = self.0.next()?;
        let inspection = match region {
            Ok(region) => {
                let mut inspection = inspect(region);
                let found = inspection.header.map(|header| header.kind);
                if inspection.problem.is_none() && found != Some(listed.kind) {
                    inspection.problem = Some(Problem::Part {
                        index,
                        what: "holds another kind than the directory lists",
                    });
                }
                Ok(inspection)
            }
            Err(what) => Err(Problem::Part { index, what }),
        };
        Some(Part {
            index,
            listed,
            inspection,
        })
    }
}

/// Inspects the structure in `region`, reading only (see the
/// [module docs](self)).
pub fn inspect(region: ReadRegion<'_>) -> Inspection<'_> {
    let snapshot = match region.snapshot() {
        Ok(snapshot) => snapshot,
        Err(err) => return Inspection::refused(None, Problem::Header(err)),
    };
    let header = Header::from(snapshot);
    // Magic and version first, as `attach` checks them, with the header's
    // own kind, element and tag, which therefore match.
    let kind = header.kind();
    let expected = kind.unwrap_or(Kind::Spsc);
    if let Err(err) = snapshot.validate(expected, snapshot.elem, snapshot.tag, |_| true) {
        let problem = match err {
            AttachError::WrongKind { found, .. } => Problem::UnknownKind(found),
            err => Problem::Header(err),
        };
        return Inspection::refused(Some(header), problem);
    }
    let elem = snapshot.elem;
    if elem.size as usize > MAX_ELEMENT_SIZE || elem.stride != elem.size.next_multiple_of(8) {
        return Inspection::refused(Some(header), Problem::Element(elem));
    }
    let region = region.with_tag(snapshot.tag);
    let read = match expected {
        Kind::Spsc => spsc::inspect(region, elem).map(|(counters, fill)| {
            let figures = Figures::Spsc {
                counters,
                fill: fill.unwrap_or(counters.len()),
            };
            (figures, fill.is_some(), Detail::None)
        }),
        Kind::Bytes => bytes::inspect(region)
            .map(|(counters, possible)| (Figures::Records(counters), possible, Detail::None)),
        Kind::Broadcast => broadcast::inspect(region, elem).map(|(published, wakes)| {
            (Figures::Broadcast { published, wakes }, true, Detail::None)
        }),
        Kind::SeqLock => seqlock::inspect(region, elem).map(|sequence| {
            #[allow(
                clippy::useless_conversion,
                reason = "`Version` is `u32` on targets without 64-bit atomics"
            )]
            let sequence = u64::from(sequence);
            let writing = sequence & 1 == 1;
            (Figures::SeqLock { sequence, writing }, true, Detail::None)
        }),
        #[cfg(any(loom, target_has_atomic = "32"))]
        Kind::Lanes => lanes::inspect(region).map(|view| {
            let (lanes, words) = view.geometry();
            // At most `MAX_LANES`.
            let lanes = lanes as u32;
            let figures = Figures::Lanes { lanes, words };
            (figures, true, Detail::Lanes(view))
        }),
        Kind::Layout => parts::list(region).map(|listing| {
            let figures = Figures::Layout {
                parts: listing.listed(),
            };
            (figures, true, Detail::Layout(listing))
        }),
        #[cfg(not(any(loom, target_has_atomic = "32")))]
        Kind::Lanes => return Inspection::refused(Some(header), Problem::UnknownKind(header.kind)),
    };
    let (figures, possible, detail) = match read {
        Ok(read) => read,
        Err(err) => return Inspection::refused(Some(header), Problem::Header(err)),
    };
    let problem = (!possible)
        .then_some(Problem::Counters)
        .or_else(|| detail.problem());
    Inspection {
        header: Some(header),
        figures: Some(figures),
        problem,
        detail,
    }
}
