//! `hello`: the handshake's hello message, decoded from arbitrary bytes.
//!
//! Input: one mode byte, then either the message's bytes as they are (mode
//! bit 0 clear) or (bit 0 set) a valid hello built from the input's fields,
//! encoded by the crate and then patched: a few bytes overwritten and the
//! length cut or extended, so that the fuzzer spends its time near valid
//! messages.
//!
//! Checked, for every input:
//! - `Hello::decode` never panics and returns exactly what the documented wire
//!   format says ([`expected`], written independently of the crate from the
//!   layout in `ipc_primitives::linux::hello`): `Ok` with every field, or the
//!   first field that is wrong, typed, with the value found;
//! - on `Ok`, encoding the decoded hello gives back the same bytes (the wire
//!   form is canonical: no field is ignored);
//! - a valid hello built from the input survives `encode` then `decode`
//!   unchanged.

use ipc_primitives::linux::hello::{HELLO_LEN, Hello, HelloError, Status};
use ipc_primitives::{ElementLayout, Kind};

use crate::support::{Input, KIND_SEQLOCK, KIND_SPSC};

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.u8();
    let built = hello_from(&mut input);
    let mut bytes = built.encode().to_vec();
    assert_eq!(Hello::decode(&bytes), Ok(built), "encode then decode");

    if mode & 1 == 0 {
        bytes = input.rest().to_vec();
    } else {
        for _ in 0..input.below(4) {
            let at = input.below(HELLO_LEN);
            bytes[at] = input.u8();
        }
        match input.below(4) {
            0 => bytes.truncate(input.below(HELLO_LEN)),
            1 => bytes.extend_from_slice(input.bytes(16)),
            _ => {}
        }
    }

    let decoded = Hello::decode(&bytes);
    assert_eq!(decoded, expected(&bytes), "decode of {bytes:02x?}");
    if let Ok(hello) = decoded {
        assert_eq!(hello.encode().as_slice(), bytes, "decode then encode");
    }
}

/// A valid hello with fields from the input.
fn hello_from(input: &mut Input<'_>) -> Hello {
    Hello {
        status: [
            Status::Accepted,
            Status::Refused,
            Status::SessionLimit,
            Status::OutOfResources,
        ][input.below(4)],
        kind: if input.bool() {
            Kind::SeqLock
        } else {
            Kind::Spsc
        },
        elem: ElementLayout {
            size: input.u32(),
            stride: input.u32(),
        },
        capacity: input.u32(),
        region_len: input.u64(),
        fds: input.u32(),
    }
}

/// What `Hello::decode` must return for `bytes`, from the wire format alone
/// (version 3): 40 bytes, little-endian: magic `u32` at 0, version `u16` (3) at 4, status `u16`
/// at 6, kind `u32` at 8, element size and stride `u32` at 12 and 16,
/// capacity `u32` at 20, region length `u64` at 24, fds `u32` at 32, reserved
/// `u32` (zero) at 36. Status is 0 accepted, 1 refused, 2 session limit, 3
/// out of resources; kind 1 to 6 (SPSC, seqlock, broadcast, record ring,
/// lanes, layout). The length, magic, version, status, kind and reserved
/// field are checked in that order; the other fields take any value.
fn expected(bytes: &[u8]) -> Result<Hello, HelloError> {
    if bytes.len() != 40 {
        return Err(HelloError::Length {
            expected: 40,
            found: bytes.len(),
        });
    }
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let magic = u32_at(0);
    if magic != u32::from_le_bytes(*b"IPCH") {
        return Err(HelloError::Magic { found: magic });
    }
    let version = u16_at(4);
    if version != 3 {
        return Err(HelloError::Version {
            expected: 3,
            found: version,
        });
    }
    let status = match u16_at(6) {
        0 => Status::Accepted,
        1 => Status::Refused,
        2 => Status::SessionLimit,
        3 => Status::OutOfResources,
        found => return Err(HelloError::Status { found }),
    };
    let kind = match u32_at(8) {
        KIND_SPSC => Kind::Spsc,
        KIND_SEQLOCK => Kind::SeqLock,
        3 => Kind::Broadcast,
        4 => Kind::Bytes,
        5 => Kind::Lanes,
        6 => Kind::Layout,
        found => return Err(HelloError::Kind { found }),
    };
    let reserved = u32_at(36);
    if reserved != 0 {
        return Err(HelloError::Reserved { found: reserved });
    }
    Ok(Hello {
        status,
        kind,
        elem: ElementLayout {
            size: u32_at(12),
            stride: u32_at(16),
        },
        capacity: u32_at(20),
        region_len: u64_at(24),
        fds: u32_at(32),
    })
}
