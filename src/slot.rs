//! A fixed-layout slot for variable-length messages of up to `N` bytes.
//!
//! [`Message`] is a payload like any other, so it travels through a ring or a
//! seqlock; its length is read back clamped to `N`, so a peer that writes a
//! length past the end yields at most `N` bytes, never an out-of-bounds read.
//!
//! ```
//! use ipc_primitives::{slot::Message, spsc::StaticSpsc};
//!
//! let mut ring = StaticSpsc::<Message<64>, 4>::new();
//! let (mut tx, mut rx) = ring.split();
//! tx.try_push(Message::new(7, b"hello").unwrap()).unwrap();
//! let msg = rx.try_pop().unwrap();
//! assert_eq!((msg.tag(), msg.payload()), (7, &b"hello"[..]));
//! let owned: heapless::Vec<u8, 64> = msg.to_vec();
//! assert_eq!(owned, b"hello");
//! ```

use core::fmt;

use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// A message of up to `N` bytes with a length and a caller-defined tag.
///
/// # Layout
/// `#[repr(C)]`, alignment 1, `8 + N` bytes, no padding, the same on every
/// target: `len` (`u32` little-endian) at 0, `tag` (`u32` little-endian) at 4,
/// `data` at 8.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Message<const N: usize> {
    len: U32,
    tag: U32,
    data: [u8; N],
}

impl<const N: usize> Message<N> {
    /// Byte offset of the payload within the message, for
    /// [`Grant::write_bytes`](crate::spsc::Grant::write_bytes).
    pub const DATA_OFFSET: usize = 8;

    /// An empty message with tag 0.
    pub const EMPTY: Self = Self {
        len: U32::ZERO,
        tag: U32::ZERO,
        data: [0; N],
    };

    /// A message holding a copy of `bytes`.
    ///
    /// # Errors
    /// [`TooLong`] if `bytes` is longer than `N`.
    pub fn new(tag: u32, bytes: &[u8]) -> Result<Self, TooLong> {
        let mut msg = Self::EMPTY;
        msg.set(tag, bytes)?;
        Ok(msg)
    }

    /// Replaces the contents with `tag` and a copy of `bytes`.
    ///
    /// # Errors
    /// [`TooLong`] if `bytes` is longer than `N`; the message is unchanged.
    pub fn set(&mut self, tag: u32, bytes: &[u8]) -> Result<(), TooLong> {
        let dst = self.data.get_mut(..bytes.len()).ok_or(TooLong {
            len: bytes.len(),
            capacity: N,
        })?;
        dst.copy_from_slice(bytes);
        self.len = U32::new(bytes.len() as u32);
        self.tag = U32::new(tag);
        Ok(())
    }

    /// The tag.
    pub fn tag(&self) -> u32 {
        self.tag.get()
    }

    /// The length, clamped to `N` (a peer may have written any value).
    pub fn len(&self) -> usize {
        (self.len.get() as usize).min(N)
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload: the first [`len`](Self::len) bytes. This borrows this
    /// local copy, never shared memory.
    pub fn payload(&self) -> &[u8] {
        &self.data[..self.len()]
    }

    /// The payload as an owned, fixed-capacity vector.
    pub fn to_vec(&self) -> heapless::Vec<u8, N> {
        let mut out = heapless::Vec::new();
        // Cannot fail: the payload is at most `N` bytes.
        let _ = out.extend_from_slice(self.payload());
        out
    }

    /// Copies the payload into `buf`, returning its length.
    ///
    /// # Errors
    /// [`BufferTooSmall`] if `buf` is shorter than the payload; `buf` is
    /// unchanged.
    pub fn copy_to(&self, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let payload = self.payload();
        let available = buf.len();
        let dst = buf.get_mut(..payload.len()).ok_or(BufferTooSmall {
            needed: payload.len(),
            available,
        })?;
        dst.copy_from_slice(payload);
        Ok(payload.len())
    }
}

impl<const N: usize> Default for Message<N> {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl<const N: usize> fmt::Debug for Message<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("tag", &self.tag())
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// A payload longer than the message's capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TooLong {
    /// Bytes offered.
    pub len: usize,
    /// Bytes a message holds.
    pub capacity: usize,
}

impl fmt::Display for TooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "payload of {} bytes exceeds the message capacity of {}",
            self.len, self.capacity
        )
    }
}

impl core::error::Error for TooLong {}

/// A destination buffer shorter than the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BufferTooSmall {
    /// Bytes in the payload.
    pub needed: usize,
    /// Bytes in the buffer.
    pub available: usize,
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "buffer of {} bytes cannot hold a payload of {}",
            self.available, self.needed
        )
    }
}

impl core::error::Error for BufferTooSmall {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_long_payload_and_keeps_contents() {
        let mut msg = Message::<4>::new(1, b"abcd").unwrap();
        assert_eq!(
            msg.set(2, b"abcde"),
            Err(TooLong {
                len: 5,
                capacity: 4
            })
        );
        assert_eq!((msg.tag(), msg.payload()), (1, &b"abcd"[..]));
    }

    #[test]
    fn reports_tag_length_and_emptiness() {
        let msg = Message::<8>::new(7, b"abc").unwrap();
        assert_eq!((msg.tag(), msg.len(), msg.is_empty()), (7, 3, false));
        let empty = Message::<8>::default();
        assert_eq!((empty.tag(), empty.len(), empty.is_empty()), (0, 0, true));
        assert_eq!(std::format!("{msg:?}"), "Message { tag: 7, len: 3, .. }");
        assert_eq!(
            std::format!(
                "{}",
                TooLong {
                    len: 9,
                    capacity: 8
                }
            ),
            "payload of 9 bytes exceeds the message capacity of 8"
        );
        assert_eq!(
            std::format!(
                "{}",
                BufferTooSmall {
                    needed: 5,
                    available: 4
                }
            ),
            "buffer of 4 bytes cannot hold a payload of 5"
        );
    }

    #[test]
    fn clamps_a_hostile_length() {
        let mut msg = Message::<4>::new(0, b"ab").unwrap();
        msg.as_mut_bytes()[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(msg.len(), 4);
        assert_eq!(msg.to_vec().len(), 4);
    }

    #[test]
    fn copy_to_checks_the_buffer() {
        let msg = Message::<8>::new(0, b"hello").unwrap();
        let mut small = [0u8; 4];
        assert_eq!(
            msg.copy_to(&mut small),
            Err(BufferTooSmall {
                needed: 5,
                available: 4
            })
        );
        let mut big = [0u8; 8];
        assert_eq!(msg.copy_to(&mut big), Ok(5));
        assert_eq!(&big[..5], b"hello");
    }

    #[test]
    fn layout_is_fixed() {
        let msg = Message::<3>::new(0x0102_0304, b"xyz").unwrap();
        assert_eq!(msg.as_bytes(), &[3, 0, 0, 0, 4, 3, 2, 1, b'x', b'y', b'z']);
    }
}
