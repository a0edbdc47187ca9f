//! What a server's memfd holds: the one thing the accept, hello and fd
//! passing code ([`Server`](super::Server), `connect`) is generic over.

use std::sync::Arc;

use super::{Connection, records};
use super::{Link, OwnedConsumer, OwnedProducer, RecordConnection, RecordSession, Session};
use crate::bytes::{self, RecordRing};
use crate::linux::shm::Segment;
use crate::linux::uds::SeqpacketStream;
use crate::linux::wake::Wakeup;
use crate::region::Region;
use crate::spsc::Spsc;
use crate::{AttachError, CreateError, ElementLayout, Kind, Pod};

/// What a [`Server`](super::Server) hands each client in its memfd: an SPSC
/// ring of `T` for any [`Pod`] `T` ([`Session`], [`Connection`]), or a ring
/// of variable-length records for [`Records`]
/// ([`RecordSession`], [`RecordConnection`]). Sealed: the hello names the
/// structure by its [`Kind`], and a client refuses any other.
pub trait Offer: private::Ring {}

impl<T: Pod> Offer for T {}
impl Offer for Records {}

/// The record ring ([`crate::bytes`]) as what a server offers:
/// `Server::<Records>::bind(addr, words, policy)` hands each client a ring of
/// `words` 8-byte words, whose largest record is
/// [`bytes::max_record`]`(words)` bytes.
#[derive(Debug, Clone, Copy)]
pub struct Records;

/// The region a handshake creates a structure in: a memfd's mapping.
type OwnedRegion = Region<'static, Arc<Segment>>;

pub(super) mod private {
    use super::*;

    /// How the handshake makes, sends and checks one kind of structure.
    pub trait Ring: Sized {
        /// The server's side of one client, once its hello is sent.
        type Session;
        /// The consuming side the server creates, owning the memfd.
        type Consumer;
        /// The structure's kind, in the hello.
        const KIND: Kind;
        /// The element layout, in the hello.
        fn elem() -> ElementLayout;
        /// Bytes a memfd needs for `capacity`, `None` if no such structure
        /// exists.
        fn required_size(capacity: u32) -> Option<usize>;
        /// Creates the structure in `region` and takes its consuming side.
        fn create(region: OwnedRegion, capacity: u32) -> Result<Self::Consumer, CreateError>;
        /// The memfd holding `consumer`'s structure.
        fn memfd(consumer: &Self::Consumer) -> &Segment;
        /// The session of a client whose hello was sent.
        fn session(link: Link, consumer: Self::Consumer, wakeup: Wakeup) -> Self::Session;
    }
}

/// The client's half: attaching to what the server sent.
pub(super) trait Attach: Offer {
    /// The client's side of the handshake.
    type Connection;
    /// Attaches to the structure in `region` (already size-checked) and
    /// makes the connection.
    fn connect(
        region: OwnedRegion,
        stream: SeqpacketStream,
        wakeup: Wakeup,
    ) -> Result<Self::Connection, AttachError>;
}

impl<T: Pod> private::Ring for T {
    type Session = Session<T>;
    type Consumer = OwnedConsumer<T>;
    const KIND: Kind = Kind::Spsc;

    fn elem() -> ElementLayout {
        ElementLayout::of::<T>()
    }

    fn required_size(capacity: u32) -> Option<usize> {
        Spsc::<T>::required_size(capacity)
    }

    fn create(region: OwnedRegion, capacity: u32) -> Result<Self::Consumer, CreateError> {
        Ok(Spsc::<T>::create(region, capacity)?.into_consumer())
    }

    fn memfd(consumer: &Self::Consumer) -> &Segment {
        consumer.keeper()
    }

    fn session(link: Link, consumer: Self::Consumer, wakeup: Wakeup) -> Self::Session {
        Session::new(link, consumer, wakeup)
    }
}

impl<T: Pod> Attach for T {
    type Connection = Connection<T>;

    fn connect(
        region: OwnedRegion,
        stream: SeqpacketStream,
        wakeup: Wakeup,
    ) -> Result<Self::Connection, AttachError> {
        let producer: OwnedProducer<T> = Spsc::<T>::attach(region)?.into_producer();
        Ok(Connection::new(stream, producer, wakeup))
    }
}

impl private::Ring for Records {
    type Session = RecordSession;
    type Consumer = records::Side<bytes::Consumer<'static, Arc<Segment>>>;
    const KIND: Kind = Kind::Bytes;

    fn elem() -> ElementLayout {
        ElementLayout::of::<[u8; 8]>()
    }

    fn required_size(capacity: u32) -> Option<usize> {
        RecordRing::required_size(capacity)
    }

    fn create(region: OwnedRegion, capacity: u32) -> Result<Self::Consumer, CreateError> {
        let ring = RecordRing::create(region, capacity)?;
        let space = ring.space();
        Ok(records::Side::new(ring.into_consumer(), space))
    }

    fn memfd(consumer: &Self::Consumer) -> &Segment {
        consumer.side.keeper()
    }

    fn session(link: Link, consumer: Self::Consumer, wakeup: Wakeup) -> Self::Session {
        RecordSession::new(link, consumer, wakeup)
    }
}

impl Attach for Records {
    type Connection = RecordConnection;

    fn connect(
        region: OwnedRegion,
        stream: SeqpacketStream,
        wakeup: Wakeup,
    ) -> Result<Self::Connection, AttachError> {
        let ring = RecordRing::attach(region)?;
        let space = ring.space();
        let side = records::Side::new(ring.into_producer(), space);
        Ok(RecordConnection::new(stream, side, wakeup))
    }
}
