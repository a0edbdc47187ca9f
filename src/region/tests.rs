//! Attach validation against a hostile peer rewriting the header, and the
//! region's fit checks.

use std::vec::Vec;

use zerocopy::IntoBytes;

use super::*;
use crate::layout::{ABI_VERSION, Line, MAGIC};
use crate::seqlock::SeqLock;
use crate::spsc::Spsc;

/// A region's memory holding a fresh `Spsc<u64>` of capacity 4, as lines.
fn ring_memory() -> Vec<Line> {
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
    // Bytes past the header's fields are never read.
    assert_eq!(attach_after(36, 0xdead_beef), Ok(()));
    assert_eq!(attach_after(124, 0xdead_beef), Ok(()));
}

#[test]
fn attach_names_each_header_mismatch() {
    use AttachError as E;
    assert_eq!(attach_after(0, 0), Err(E::NotInitialized));
    assert_eq!(attach_after(0, 7), Err(E::WrongMagic { found: 7 }));
    assert_eq!(attach_after(0, MAGIC.swap_bytes()), Err(E::WrongByteOrder));
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
    let u64_layout = ElementLayout { size: 8, stride: 8 };
    assert_eq!(
        attach_after(12, 16),
        Err(E::WrongElement {
            expected: u64_layout,
            found: ElementLayout {
                size: 16,
                stride: 8
            }
        })
    );
    assert_eq!(
        attach_after(16, 16),
        Err(E::WrongElement {
            expected: u64_layout,
            found: ElementLayout {
                size: 8,
                stride: 16
            }
        })
    );
    for capacity in [0, 3, u32::MAX] {
        assert_eq!(
            attach_after(20, capacity),
            Err(E::InvalidCapacity { found: capacity })
        );
    }
    assert_eq!(
        attach_after(20, 1 << 20),
        Err(E::Fit(FitError::TooSmall {
            needed: 512 + (16 << 20),
            actual: 640
        }))
    );
    assert_eq!(
        attach_after(24, 5),
        Err(E::WrongTag {
            expected: 0,
            found: 5
        })
    );
    assert_eq!(
        attach_after(28, 1),
        Err(E::WrongTag {
            expected: 0,
            found: 1 << 32
        })
    );
    // A creation under way (odd), or one that started and finished again
    // while the attacher copied the header, is not a header to judge.
    assert_eq!(attach_after(32, 3), Err(E::NotInitialized));
}

#[test]
fn attach_checks_type_and_region() {
    let mut mem = ring_memory();
    assert_eq!(
        Spsc::<u32>::attach(Region::new(mem.as_mut_bytes())).map(|_| ()),
        Err(AttachError::WrongElement {
            expected: ElementLayout { size: 4, stride: 8 },
            found: ElementLayout { size: 8, stride: 8 }
        })
    );
    assert_eq!(
        SeqLock::<u64>::attach(Region::new(mem.as_mut_bytes())).map(|_| ()),
        Err(AttachError::WrongKind {
            expected: Kind::SeqLock,
            found: Kind::Spsc as u32
        })
    );
    let bytes = mem.as_mut_bytes();
    assert_eq!(
        Spsc::<u64>::attach(Region::new(&mut bytes[128..])).map(|_| ()),
        Err(AttachError::NotInitialized)
    );
    assert_eq!(
        Spsc::<u64>::attach(Region::new(&mut bytes[..570])).map(|_| ()),
        Err(AttachError::Fit(FitError::TooSmall {
            needed: 576,
            actual: 570
        }))
    );
    assert_eq!(
        Spsc::<u64>::attach(Region::new(&mut bytes[..20])).map(|_| ()),
        Err(AttachError::Fit(FitError::TooSmall {
            needed: 36,
            actual: 20
        }))
    );
    assert_eq!(
        Spsc::<u64>::attach(Region::new(&mut bytes[1..])).map(|_| ()),
        Err(AttachError::Fit(FitError::Misaligned { required: 128 }))
    );
    assert_eq!(
        Spsc::<u64>::attach(Region::new(&mut [])).map(|_| ()),
        Err(AttachError::Fit(FitError::Misaligned { required: 128 }))
    );
}

#[test]
fn attach_to_garbage_never_succeeds() {
    let mut mem = std::vec![Line([0xa5; LINE]); 8];
    assert_eq!(
        Spsc::<u64>::attach(Region::new(mem.as_mut_bytes())).map(|_| ()),
        Err(AttachError::NotInitialized),
        "0xa5a5a5a5 is an odd creation sequence"
    );
    let mut mem = std::vec![Line([0x5a; LINE]); 8];
    assert_eq!(
        Spsc::<u64>::attach(Region::new(mem.as_mut_bytes())).map(|_| ()),
        Err(AttachError::WrongMagic { found: 0x5a5a_5a5a })
    );
}

#[test]
fn a_region_reports_its_length() {
    let mut mem = std::vec![Line::ZERO; 3];
    let region = Region::new(mem.as_mut_bytes());
    assert_eq!((region.len(), region.is_empty()), (384, false));
    let region = Region::new(&mut mem.as_mut_bytes()[..0]);
    assert_eq!((region.len(), region.is_empty()), (0, true));
    assert!(std::format!("{region:?}").contains("len: 0"));
}

#[test]
fn errors_display_what_is_wrong() {
    let cases: [(&dyn core::fmt::Display, &str); 9] = [
        (
            &AttachError::Fit(FitError::TooSmall {
                needed: 416,
                actual: 400,
            }),
            "region too small: needs 416 bytes, has 400",
        ),
        (
            &CreateError::Fit(FitError::Misaligned { required: 128 }),
            "region is not aligned to 128 bytes",
        ),
        (
            &CreateError::InvalidCapacity { capacity: 3 },
            "invalid capacity 3: not one this structure accepts (its `create` says which)",
        ),
        (
            &AttachError::WrongKind {
                expected: Kind::Spsc,
                found: 2,
            },
            "region holds structure kind \"seqlock\", expected \"SPSC ring\"",
        ),
        (
            &AttachError::WrongKind {
                expected: Kind::Spsc,
                found: 77,
            },
            "region holds structure kind 77 (unknown), expected \"SPSC ring\"",
        ),
        (
            &AttachError::WrongElement {
                expected: ElementLayout::of::<u64>(),
                found: ElementLayout::of::<u32>(),
            },
            "region holds 4-byte elements (stride 8), expected 8-byte elements (stride 8)",
        ),
        (
            &AttachError::WrongByteOrder,
            "region was created by a process of the other byte order",
        ),
        (
            &AttachError::WrongMagic { found: 7 },
            "region holds no ipc-primitives structure (magic 0x00000007)",
        ),
        (
            &AttachError::WrongVersion {
                expected: 2,
                found: 1,
            },
            "layout version 1, this build reads 2",
        ),
    ];
    for (err, text) in cases {
        assert_eq!(std::format!("{err}"), text);
    }
}

/// The `creation` word of a region's header.
fn creation(mem: &[Line]) -> u32 {
    u32::from_ne_bytes(mem.as_bytes()[32..36].try_into().unwrap())
}

#[test]
fn creating_over_a_creator_that_died_mid_creation_publishes() {
    let mut mem = ring_memory();
    assert_eq!(creation(&mem), 2, "one creation, published even");
    // A creator that died mid-creation left `creation` odd.
    mem.as_mut_bytes()[32..36].copy_from_slice(&5u32.to_ne_bytes());
    assert_eq!(
        Spsc::<u64>::attach(Region::new(mem.as_mut_bytes())).map(|_| ()),
        Err(AttachError::NotInitialized)
    );
    Spsc::<u64>::create(Region::new(mem.as_mut_bytes()), 4).unwrap();
    assert_eq!(
        creation(&mem),
        6,
        "the next even value after the dead one's"
    );
    assert_eq!(
        Spsc::<u64>::attach(Region::new(mem.as_mut_bytes())).map(|_| ()),
        Ok(())
    );
    Spsc::<u64>::create(Region::new(mem.as_mut_bytes()), 4).unwrap();
    assert_eq!(creation(&mem), 8, "+2 per creation");
}

#[test]
fn the_header_records_all_64_bits_of_a_type_tag() {
    const TAG: u64 = 0x0123_4567_89ab_cdef;
    let mut mem = std::vec![Line::ZERO; 5];
    Spsc::<u64>::create(Region::new(mem.as_mut_bytes()).with_tag(TAG), 4).unwrap();
    assert_eq!(
        mem.as_bytes()[24..32],
        [
            (TAG as u32).to_ne_bytes(),
            ((TAG >> 32) as u32).to_ne_bytes()
        ]
        .concat()[..],
        "low half at 24, high half at 28"
    );
    let region = Region::new(mem.as_mut_bytes()).with_tag(TAG);
    assert_eq!(region.tag(), TAG);
    assert_eq!(Spsc::<u64>::attach(region).map(|_| ()), Ok(()));
    for other in [0, TAG as u32 as u64, TAG ^ (1 << 32), TAG ^ (1 << 63)] {
        assert_eq!(
            Spsc::<u64>::attach(Region::new(mem.as_mut_bytes()).with_tag(other)).map(|_| ()),
            Err(AttachError::WrongTag {
                expected: other,
                found: TAG
            })
        );
    }
    let read = ReadRegion::from(Region::new(mem.as_mut_bytes())).with_tag(TAG);
    assert_eq!((read.tag(), read.len(), read.is_empty()), (TAG, 640, false));
    assert_eq!(std::format!("{read:?}"), "ReadRegion { len: 640, .. }");
    let empty = ReadRegion::from(Region::new(&mut mem.as_mut_bytes()[..0]));
    assert_eq!((empty.len(), empty.is_empty()), (0, true));
}
