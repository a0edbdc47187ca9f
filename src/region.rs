//! A span of memory a structure lives in, and placing structures in it.

use core::{fmt, marker::PhantomData, ptr::NonNull};

use crate::layout::{ElementLayout, Fingerprint, Header, Kind, LINE};
use crate::sync::{Ordering, WORD_BYTES, Word};

/// Memory that may be shared with another thread or process and is only ever
/// accessed through atomics.
///
/// A `Region` is where a structure is [created](crate::spsc::Spsc::create) or
/// [attached](crate::spsc::Spsc::attach): a buffer, a `static`, or an `mmap`
/// shared with another process. It must start on a 128-byte boundary
/// ([`Line`](crate::Line) helps); structures check that, and the length, and
/// report what is wrong.
#[derive(Clone, Copy)]
pub struct Region<'a> {
    ptr: NonNull<u8>,
    len: usize,
    _memory: PhantomData<&'a [Word]>,
}

// SAFETY: a `Region` is a pointer and a length; the memory it names is accessed
// only through atomics, which are `Sync`, so it may be used from any thread.
unsafe impl Send for Region<'_> {}
// SAFETY: as for `Send`: shared use only performs atomic accesses.
unsafe impl Sync for Region<'_> {}

impl fmt::Debug for Region<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .finish()
    }
}

impl<'a> Region<'a> {
    /// A region over memory this process owns for `'a`.
    ///
    /// The exclusive borrow guarantees nothing else reads or writes the bytes
    /// non-atomically while structures in the region are in use.
    pub fn new(bytes: &'a mut [u8]) -> Self {
        Self {
            len: bytes.len(),
            ptr: NonNull::from(bytes).cast(),
            _memory: PhantomData,
        }
    }

    /// A region over memory this process did not allocate, such as an `mmap`
    /// shared with another process or a fixed RAM address on a microcontroller.
    ///
    /// # Safety
    /// For all of `'a`, the `len` bytes at `ptr` must be initialised, valid for
    /// reads and writes, and accessed by this process only through this crate
    /// (no references to them and no non-atomic reads or writes elsewhere).
    /// Other processes may write them in any way: that is what the structures
    /// are built to survive.
    pub unsafe fn from_raw_parts(ptr: NonNull<u8>, len: usize) -> Self {
        Self {
            ptr,
            len,
            _memory: PhantomData,
        }
    }

    /// The region's length in bytes.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the region has no bytes.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first byte of the region.
    pub const fn as_ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    fn is_aligned(&self) -> bool {
        self.ptr.as_ptr().addr().is_multiple_of(LINE)
    }

    /// Initialises a `C` at the start of the region followed by `capacity`
    /// zeroed slots for `T`, and publishes its header last.
    pub(crate) fn create<C: Control, T>(self, capacity: u32) -> Result<Placed<'a, C>, CreateError> {
        if !self.is_aligned() {
            return Err(CreateError::Misaligned { required: LINE });
        }
        if !C::capacity_ok(capacity) {
            return Err(CreateError::InvalidCapacity { capacity });
        }
        let elem = ElementLayout::of::<T>();
        let needed = required_size::<C>(elem, capacity).ok_or(CreateError::TooSmall {
            needed: usize::MAX,
            actual: self.len,
        })?;
        if needed > self.len {
            return Err(CreateError::TooSmall {
                needed,
                actual: self.len,
            });
        }
        // SAFETY: checked above: aligned to 128 (>= align_of::<C>()) and at least
        // `needed` bytes long.
        let placed = unsafe { self.place::<C>(elem, capacity) };
        let header = placed.control.header();
        header.begin_init();
        header.write(Fingerprint {
            kind: C::KIND,
            elem,
            capacity,
        });
        placed.control.reset();
        for word in placed.slots {
            word.store(0, Ordering::Relaxed);
        }
        header.publish();
        Ok(placed)
    }

    /// Validates the header at the start of the region against `C` and `T` and
    /// the region's real length.
    pub(crate) fn attach<C: Control, T>(self) -> Result<Placed<'a, C>, AttachError> {
        if !self.is_aligned() {
            return Err(AttachError::Misaligned { required: LINE });
        }
        let min = core::mem::size_of::<C>();
        if self.len < min {
            return Err(AttachError::TooSmall {
                needed: min,
                actual: self.len,
            });
        }
        let elem = ElementLayout::of::<T>();
        // SAFETY: aligned and at least `size_of::<C>()` long (checked above), and
        // a `Control` is valid for any bytes. No slots yet: capacity 0.
        let control = unsafe { self.place::<C>(elem, 0) }.control;
        let capacity = control.header().validate(C::KIND, elem, C::capacity_ok)?;
        let needed = required_size::<C>(elem, capacity).ok_or(AttachError::TooSmall {
            needed: usize::MAX,
            actual: self.len,
        })?;
        if needed > self.len {
            return Err(AttachError::TooSmall {
                needed,
                actual: self.len,
            });
        }
        // SAFETY: aligned, and `needed` (control plus `capacity` slots) fits.
        Ok(unsafe { self.place::<C>(elem, capacity) })
    }

    /// Views the start of the region as a `C` followed by `capacity` slots.
    ///
    /// # Safety
    /// The region must be aligned to 128 and hold `required_size::<C>(elem, capacity)`
    /// bytes.
    unsafe fn place<C: Control>(self, elem: ElementLayout, capacity: u32) -> Placed<'a, C> {
        let words = capacity as usize * elem.slot_size() as usize / WORD_BYTES;
        // SAFETY: the caller guarantees alignment and size; `Control` promises `C`
        // is made only of atomics, valid for any initialised bytes, and
        // `Region`'s contract makes the memory initialised, live for `'a`, and
        // accessed only atomically.
        let control = unsafe { self.ptr.cast::<C>().as_ref() };
        // SAFETY: the slots follow `C` (whose size is a multiple of 128, so they
        // are aligned for `Word`) and lie within the region by the caller's size
        // guarantee; `Word` is an atomic, valid for any bytes.
        let slots = unsafe {
            let first = self.ptr.add(core::mem::size_of::<C>()).cast::<Word>();
            NonNull::slice_from_raw_parts(first, words).as_ref()
        };
        Placed {
            control,
            slots,
            capacity,
        }
    }
}

/// Bytes a region needs for a `C` and `capacity` slots of `elem`, if that fits in
/// `usize`.
pub(crate) const fn required_size<C>(elem: ElementLayout, capacity: u32) -> Option<usize> {
    match (elem.slot_size() as usize).checked_mul(capacity as usize) {
        Some(slots) => slots.checked_add(core::mem::size_of::<C>()),
        None => None,
    }
}

/// The control block of a structure: the part of its region before the slots.
///
/// # Safety
/// An implementor must be `#[repr(C)]`, start with a [`Header`], consist only of
/// atomics (possibly wrapped in `CacheLine`), have a size that is a multiple of
/// 128 and an alignment of at most 128, so that any initialised bytes form a
/// valid value and every field is accessed atomically.
pub(crate) unsafe trait Control: Sized {
    /// The kind recorded in the header.
    const KIND: Kind;
    /// Whether a capacity is allowed for this structure.
    fn capacity_ok(capacity: u32) -> bool;
    /// The header.
    fn header(&self) -> &Header;
    /// Sets every field after the header to its initial value.
    fn reset(&self);
}

/// A control block and its slots, validated against a region.
#[derive(Debug)]
pub(crate) struct Placed<'a, C> {
    pub(crate) control: &'a C,
    pub(crate) slots: &'a [Word],
    pub(crate) capacity: u32,
}

/// Why a structure could not be created in a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CreateError {
    /// The region does not start on a `required`-byte boundary.
    Misaligned {
        /// The alignment needed.
        required: usize,
    },
    /// The region is shorter than the structure needs.
    TooSmall {
        /// Bytes needed (`usize::MAX` if the size overflows).
        needed: usize,
        /// Bytes in the region.
        actual: usize,
    },
    /// The capacity is not one the structure allows.
    InvalidCapacity {
        /// The capacity asked for.
        capacity: u32,
    },
}

impl fmt::Display for CreateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Misaligned { required } => {
                write!(f, "region is not aligned to {required} bytes")
            }
            Self::TooSmall { needed, actual } => {
                write!(f, "region too small: needs {needed} bytes, has {actual}")
            }
            Self::InvalidCapacity { capacity } => write!(
                f,
                "invalid capacity {capacity}: rings need a power of two up to 2^31, seqlocks 1"
            ),
        }
    }
}

impl core::error::Error for CreateError {}

/// Why attaching to a region failed: the first mismatch found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AttachError {
    /// The region does not start on a `required`-byte boundary.
    Misaligned {
        /// The alignment needed.
        required: usize,
    },
    /// The region is shorter than its header says the structure needs.
    TooSmall {
        /// Bytes needed (`usize::MAX` if the size overflows).
        needed: usize,
        /// Bytes in the region.
        actual: usize,
    },
    /// The magic word is still zero: the creator has not finished.
    NotInitialized,
    /// The magic word is not this crate's.
    WrongMagic {
        /// The value found.
        found: u32,
    },
    /// The layout version differs from this build's.
    WrongVersion {
        /// This build's [`ABI_VERSION`](crate::ABI_VERSION).
        expected: u32,
        /// The version in the header.
        found: u32,
    },
    /// The region holds another kind of structure.
    WrongKind {
        /// The kind asked for.
        expected: Kind,
        /// The raw kind in the header.
        found: u32,
    },
    /// The region was created for another element type.
    WrongElement {
        /// The element type asked for.
        expected: ElementLayout,
        /// The element layout in the header.
        found: ElementLayout,
    },
    /// The slot size does not match the element type.
    WrongSlotSize {
        /// The slot size the element type needs.
        expected: u32,
        /// The slot size in the header.
        found: u32,
    },
    /// The header's capacity is not one the structure allows.
    InvalidCapacity {
        /// The capacity in the header.
        found: u32,
    },
    /// The structure's counters are inconsistent (e.g. more elements than slots).
    Corrupted,
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Misaligned { required } => {
                write!(f, "region is not aligned to {required} bytes")
            }
            Self::TooSmall { needed, actual } => {
                write!(f, "region too small: needs {needed} bytes, has {actual}")
            }
            Self::NotInitialized => f.write_str("region is not initialised yet (magic is 0)"),
            Self::WrongMagic { found } => write!(f, "wrong magic {found:#010x}"),
            Self::WrongVersion { expected, found } => {
                write!(f, "layout version {found}, this build reads {expected}")
            }
            Self::WrongKind { expected, found } => {
                write!(
                    f,
                    "region holds structure kind {found}, expected {expected:?}"
                )
            }
            Self::WrongElement { expected, found } => write!(
                f,
                "element type is {} bytes aligned to {}, expected {} aligned to {}",
                found.size, found.align, expected.size, expected.align
            ),
            Self::WrongSlotSize { expected, found } => {
                write!(f, "slot size {found}, expected {expected}")
            }
            Self::InvalidCapacity { found } => write!(f, "invalid capacity {found} in header"),
            Self::Corrupted => f.write_str("counters in the region are inconsistent"),
        }
    }
}

impl core::error::Error for AttachError {}

#[cfg(all(test, not(loom)))]
mod tests {
    use zerocopy::IntoBytes;

    use super::*;
    use crate::layout::{ABI_VERSION, Line, MAGIC};
    use crate::seqlock::SeqLock;
    use crate::spsc::Spsc;

    /// A region holding a fresh `Spsc<u64>` of capacity 4, as lines.
    fn ring_memory() -> std::vec::Vec<Line> {
        let mut mem = std::vec![Line::ZERO; 5];
        Spsc::<u64>::create(Region::new(mem.as_mut_bytes()), 4).unwrap();
        mem
    }

    /// Overwrites the `u32` at `offset` as a hostile peer could, then attaches.
    fn attach_after(offset: usize, value: u32) -> Result<(), AttachError> {
        let mut mem = ring_memory();
        mem.as_mut_bytes()[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
        Spsc::<u64>::attach(Region::new(mem.as_mut_bytes())).map(|_| ())
    }

    #[test]
    fn attach_accepts_a_valid_header() {
        assert_eq!(attach_after(0, MAGIC), Ok(()));
    }

    #[test]
    fn attach_names_each_header_mismatch() {
        use AttachError as E;
        assert_eq!(attach_after(0, 0), Err(E::NotInitialized));
        assert_eq!(attach_after(0, 7), Err(E::WrongMagic { found: 7 }));
        assert_eq!(
            attach_after(4, 9),
            Err(E::WrongVersion {
                expected: ABI_VERSION,
                found: 9
            })
        );
        assert_eq!(
            attach_after(8, 2),
            Err(E::WrongKind {
                expected: Kind::Spsc,
                found: 2
            })
        );
        let u64_layout = ElementLayout { size: 8, align: 8 };
        assert_eq!(
            attach_after(12, 16),
            Err(E::WrongElement {
                expected: u64_layout,
                found: ElementLayout { size: 16, align: 8 }
            })
        );
        assert_eq!(
            attach_after(16, 4),
            Err(E::WrongElement {
                expected: u64_layout,
                found: ElementLayout { size: 8, align: 4 }
            })
        );
        assert_eq!(
            attach_after(20, 16),
            Err(E::WrongSlotSize {
                expected: 8,
                found: 16
            })
        );
        for capacity in [0, 3, u32::MAX] {
            assert_eq!(
                attach_after(24, capacity),
                Err(E::InvalidCapacity { found: capacity })
            );
        }
        assert_eq!(
            attach_after(24, 1 << 20),
            Err(E::TooSmall {
                needed: 512 + (8 << 20),
                actual: 640
            })
        );
    }

    #[test]
    fn attach_checks_type_and_region() {
        let mut mem = ring_memory();
        let bytes = mem.as_mut_bytes();
        assert_eq!(
            Spsc::<u32>::attach(Region::new(bytes)).map(|_| ()),
            Err(AttachError::WrongElement {
                expected: ElementLayout { size: 4, align: 4 },
                found: ElementLayout { size: 8, align: 8 }
            })
        );
        assert_eq!(
            SeqLock::<u64>::attach(Region::new(bytes)).map(|_| ()),
            Err(AttachError::WrongKind {
                expected: Kind::SeqLock,
                found: Kind::Spsc as u32
            })
        );
        assert_eq!(
            Spsc::<u64>::attach(Region::new(&mut bytes[128..])).map(|_| ()),
            Err(AttachError::NotInitialized)
        );
        assert_eq!(
            Spsc::<u64>::attach(Region::new(&mut bytes[..540])).map(|_| ()),
            Err(AttachError::TooSmall {
                needed: 544,
                actual: 540
            })
        );
        assert_eq!(
            Spsc::<u64>::attach(Region::new(&mut bytes[..100])).map(|_| ()),
            Err(AttachError::TooSmall {
                needed: 512,
                actual: 100
            })
        );
        assert_eq!(
            Spsc::<u64>::attach(Region::new(&mut bytes[1..])).map(|_| ()),
            Err(AttachError::Misaligned { required: 128 })
        );
        assert_eq!(
            Spsc::<u64>::attach(Region::new(&mut [])).map(|_| ()),
            Err(AttachError::Misaligned { required: 128 })
        );
    }

    #[test]
    fn attach_to_garbage_never_succeeds() {
        let mut mem = std::vec![Line([0xa5; LINE]); 8];
        assert_eq!(
            Spsc::<u64>::attach(Region::new(mem.as_mut_bytes())).map(|_| ()),
            Err(AttachError::WrongMagic { found: 0xa5a5_a5a5 })
        );
    }

    #[test]
    fn errors_display_what_is_wrong() {
        let err = AttachError::TooSmall {
            needed: 416,
            actual: 400,
        };
        assert_eq!(
            std::format!("{err}"),
            "region too small: needs 416 bytes, has 400"
        );
        let err = CreateError::InvalidCapacity { capacity: 3 };
        assert!(std::format!("{err}").contains("invalid capacity 3"));
    }
}
