//! Wake-ups for the [`wait`](crate::wait) protocol: eventfd and futex, and the
//! blocking pop and notifying push built on them.
//!
//! A consumer that finds its ring empty announces itself on the ring's
//! [`Event`] and sleeps; the producer, after a push, asks
//! [`Producer::wake_needed`] and makes a system call only if it says so. A
//! producer whose consumer is awake therefore makes none.
//! [`Consumer::pop_blocking`] and [`Producer::push_notify`] do both halves;
//! a [`Wakeup`] says how the consumer sleeps.
//!
//! # Eventfd or futex
//! Both sides of a ring must use the same kind (agree on it in the handshake).
//!
//! - **[`EventFd`]**: the consumer sleeps in `poll` on an eventfd and the
//!   producer writes to it. The fd is pollable, so an event loop (`epoll`, mio,
//!   tokio's `AsyncFd`) waits on it beside its sockets and other rings: the
//!   choice for a daemon. It is one more fd to hand the peer over the Unix
//!   socket, next to the memory's.
//! - **Futex** ([`Wakeup::Futex`], [`futex_wait`], [`futex_wake`]): the consumer
//!   sleeps in the kernel on the event's epoch word itself, in the shared
//!   memory. No fd, nothing to pass, the least overhead; but only a thread
//!   blocked in `futex_wait` can wait on it, not an event loop. The futexes are
//!   shared (never `FUTEX_PRIVATE_FLAG`), as memory mapped by two processes
//!   requires.
//!
//! ```
//! use core::time::Duration;
//! use std::thread;
//!
//! use ipc_primitives::linux::wake::{SpinThenBlock, Wakeup};
//! use ipc_primitives::spsc::StaticSpsc;
//!
//! let mut ring = StaticSpsc::<u64, 64>::new();
//! let (mut tx, mut rx) = ring.split();
//! let wakeup = Wakeup::eventfd()?; // or `Wakeup::Futex`
//!
//! thread::scope(|s| {
//!     let wakeup = &wakeup;
//!     s.spawn(move || {
//!         // 32 messages fit in 64 slots, so no push finds the ring full.
//!         for seq in 0..32 {
//!             tx.push_notify(seq, wakeup).expect("push");
//!         }
//!     });
//!     let timeout = Some(Duration::from_secs(10));
//!     for seq in 0..32 {
//!         assert_eq!(rx.pop_blocking(wakeup, SpinThenBlock::default(), timeout)?, seq);
//!     }
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Event loops
//! A consumer driven by `epoll` (or tokio's `AsyncFd`) registers the
//! [`EventFd`] for reading and, for each ring: pops until empty; calls
//! [`Consumer::prepare_to_sleep`]; on `Ok(None)` pops again, on `Ok(Some(_))`
//! leaves the ring to the event loop. When the eventfd is readable it calls
//! [`EventFd::drain`] and pops again. The producer uses
//! [`Producer::push_notify`] as usual.
//!
//! # Trust
//! A peer can wake the consumer as often as it likes (writing the eventfd, or
//! changing the epoch word so that `futex_wait` returns at once) or never (by
//! not waking it). Neither is undefined behaviour, but a consumer of an
//! untrusted peer should pass a timeout, which bounds every wait here.
//!
//! An eventfd's `O_NONBLOCK` flag belongs to the open file, which the peer
//! shares and can change. Reads here never block whatever the flag
//! (`preadv2(RWF_NOWAIT)`; on older kernels, whose eventfds refuse it, they
//! fall back to `read`, which relies on the flag). A write blocks only if the counter is at its
//! maximum (`u64::MAX - 1`) *and* the flag was cleared, which only a hostile
//! holder of the fd can arrange.

use core::fmt;
use core::time::Duration;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use rustix::event::{EventfdFlags, PollFlags, Timespec};
use rustix::fs::{Mode, OFlags};
use rustix::io::{Errno, IoSliceMut, ReadWriteFlags};
use rustix::thread::futex;

use super::SysError;
use super::poll::{deadline_after, poll_fd, poll_now};
use crate::Pod;
use crate::spsc::{Consumer, Corrupted, Producer, PushError};
use crate::wait::{Event, SleepError};

/// An eventfd in counter mode, non-blocking: one side [`signal`](Self::signal)s,
/// the other [`wait`](Self::wait)s or polls it in an event loop.
///
/// Each signal adds 1 to a kernel counter; a read returns the counter and
/// resets it, so one read consumes any number of signals. The wake-up protocol
/// re-checks the ring after every wake, so a count is all it needs.
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// Creates an eventfd with a zero counter:
    /// `eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)`.
    #[doc(alias = "eventfd")]
    pub fn new() -> Result<Self, SysError> {
        let fd = rustix::event::eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC)
            .map_err(SysError::from_call("eventfd"))?;
        Ok(Self { fd })
    }

    /// Adopts an eventfd received from a peer, after checking that it is one
    /// and is in counter mode: reads `/proc/thread-self/fdinfo/<fd>`.
    ///
    /// Fails with [`EventFdError::NotEventFd`] for any other fd,
    /// [`EventFdError::Semaphore`] for an eventfd made with `EFD_SEMAPHORE`
    /// (if the kernel shows the mode in fdinfo; older ones do not, and such
    /// eventfds pass unchecked), and [`EventFdError::Sys`] if the fdinfo
    /// opened but could not be read.
    ///
    /// # Without `/proc`
    /// Where the fdinfo cannot be opened (a sandbox without `/proc`), the
    /// check falls back to what needs none: `fstatfs` must find an anonymous
    /// inode (`ANON_INODE_FS_MAGIC`: not a pipe, socket, file or device), and
    /// an 8-byte `write` of zero must succeed, which of the anonymous-inode
    /// fds a peer can hand over (timerfd, signalfd, epoll, inotify, pidfd,
    /// userfaultfd, ...) only an eventfd accepts (it adds nothing to the
    /// counter; a sleeper on it sees one spurious wake). Semaphore mode is
    /// invisible there: a consumer that sleeps on an eventfd from an
    /// untrusted peer may then be woken until the peer's count runs out. A
    /// producer, such as the handshake's client, only writes to the fd,
    /// which the mode does not change.
    #[doc(alias("fdinfo", "fstatfs"))]
    pub fn from_fd(fd: OwnedFd) -> Result<Self, EventFdError> {
        let path = format!("/proc/thread-self/fdinfo/{}", fd.as_raw_fd());
        let Ok(info) = rustix::fs::open(
            path.as_str(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            check_without_proc(fd.as_fd())?;
            return Ok(Self { fd });
        };
        // An eventfd's fdinfo is about 130 bytes.
        let mut buf = [0; 4096];
        let mut len = 0;
        while let Some(rest) = buf.get_mut(len..).filter(|rest| !rest.is_empty()) {
            match rustix::io::retry_on_intr(|| rustix::io::read(&info, &mut *rest)) {
                Ok(0) => break,
                Ok(read) => len += read,
                Err(errno) => return Err(SysError::new("read(fdinfo)", errno).into()),
            }
        }
        check_fdinfo(buf.get(..len).unwrap_or_default())?;
        Ok(Self { fd })
    }

    /// Adopts `fd` without checking it. An fd that is not a non-blocking
    /// counter-mode eventfd makes [`signal`](Self::signal),
    /// [`wait`](Self::wait) and [`drain`](Self::drain) fail (`EINVAL`, `EBADF`)
    /// or misbehave (a pipe would carry the counter's bytes as data), never
    /// cause undefined behaviour.
    pub fn from_fd_trusted(fd: OwnedFd) -> Self {
        Self { fd }
    }

    /// Signals the other side: `write` of 1 to the counter.
    ///
    /// A counter already at its maximum (`EAGAIN`) means the other side has a
    /// signal pending: that is success.
    #[doc(alias = "write")]
    pub fn signal(&self) -> Result<(), SysError> {
        match rustix::io::retry_on_intr(|| rustix::io::write(&self.fd, &1_u64.to_ne_bytes())) {
            Ok(_) | Err(Errno::AGAIN) => Ok(()),
            Err(errno) => Err(SysError::new("write", errno)),
        }
    }

    /// Waits until signalled, then [drains](Self::drain) the counter: `poll`
    /// for `POLLIN`, then `read`.
    ///
    /// `timeout` `None` waits for ever (as does one too long to represent).
    /// Returns `Ok` when signalled, and also when another reader drained the
    /// counter between the `poll` and the `read` (a spurious wake: the caller
    /// re-checks its condition anyway); [`SleepFailure::TimedOut`] if nothing
    /// came in time. An interrupted `poll` (`EINTR`) is retried with the time
    /// left.
    #[doc(alias("poll", "read"))]
    pub fn wait(&self, timeout: Option<Duration>) -> Result<(), SleepFailure> {
        self.wait_until(deadline_after(timeout))
    }

    /// [`wait`](Self::wait) with a deadline; polls once even if it has passed.
    fn wait_until(&self, deadline: Option<Instant>) -> Result<(), SleepFailure> {
        self.poll_until(deadline)?;
        self.drain()?;
        Ok(())
    }

    /// Waits until the counter is non-zero, leaving it as it is: `poll`.
    /// Polls once even if `deadline` has passed.
    fn poll_until(&self, deadline: Option<Instant>) -> Result<(), SleepFailure> {
        if poll_fd(self.fd.as_fd(), PollFlags::IN, deadline)?.is_empty() {
            return Err(SleepFailure::TimedOut);
        }
        Ok(())
    }

    /// Takes all pending signals without waiting: `preadv2(RWF_NOWAIT)` (or
    /// `read` on older kernels, whose eventfds refuse that). Returns the
    /// counter, 0 if nothing was pending.
    ///
    /// An event loop calls it when the fd polls readable, before re-checking
    /// its rings.
    #[doc(alias("read", "preadv2"))]
    pub fn drain(&self) -> Result<u64, SysError> {
        let mut count = [0; 8];
        match read_nowait(self.fd.as_fd(), &mut count) {
            Ok(_) => Ok(u64::from_ne_bytes(count)),
            Err(Errno::AGAIN) => Ok(0),
            Err(errno) => Err(SysError::new("read", errno)),
        }
    }

    /// The fd, to send to the peer or keep elsewhere.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

impl AsFd for EventFd {
    /// The eventfd, to register with `epoll` (readable while signals are
    /// pending) or send to a peer (e.g. with `SCM_RIGHTS`).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<EventFd> for OwnedFd {
    fn from(eventfd: EventFd) -> Self {
        eventfd.fd
    }
}

/// Reads without blocking even if the fd's shared `O_NONBLOCK` flag was
/// cleared (the peer shares it and may clear it): `preadv2(fd, buf, -1,
/// RWF_NOWAIT)`, or where the kernel (older ones, for eventfds) or a seccomp
/// filter refuses that, a zero-timeout `poll` and a plain `read` only if it
/// says readable (this process is the only reader, so the `read` then finds
/// data).
fn read_nowait(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    let nowait = rustix::io::preadv2(
        fd,
        &mut [IoSliceMut::new(&mut *buf)],
        // The current position, which an eventfd does not have.
        u64::MAX,
        ReadWriteFlags::NOWAIT,
    );
    match nowait {
        Err(Errno::OPNOTSUPP | Errno::NOSYS | Errno::PERM) => {
            if poll_now(fd, PollFlags::IN)
                .map_err(|err| err.errno)?
                .is_empty()
            {
                return Err(Errno::AGAIN);
            }
            rustix::io::retry_on_intr(|| rustix::io::read(fd, &mut *buf))
        }
        other => other,
    }
}

/// `ANON_INODE_FS_MAGIC` from `<linux/magic.h>`: the filesystem of
/// anonymous-inode fds (eventfd, timerfd, signalfd, epoll, ...).
const ANON_INODE_FS_MAGIC: u64 = 0x0904_1934;

/// The check of [`EventFd::from_fd`] that needs no `/proc`: an anonymous
/// inode that accepts an 8-byte write of zero. `fstatfs`, `write`.
fn check_without_proc(fd: BorrowedFd<'_>) -> Result<(), EventFdError> {
    let fs = rustix::fs::fstatfs(fd).map_err(SysError::from_call("fstatfs"))?;
    // `f_type` is a signed `long` on some targets; the magic is positive.
    #[allow(
        clippy::useless_conversion,
        reason = "`f_type`'s type differs by target"
    )]
    if u64::try_from(fs.f_type).ok() != Some(ANON_INODE_FS_MAGIC) {
        return Err(EventFdError::NotEventFd);
    }
    // An eventfd adds the value to its counter: zero changes nothing, and a
    // write of zero never blocks. Every other anonymous-inode fd refuses an
    // 8-byte write of zeros (most have no `write` at all).
    match rustix::io::retry_on_intr(|| rustix::io::write(fd, &0_u64.to_ne_bytes())) {
        Ok(8) => Ok(()),
        _ => Err(EventFdError::NotEventFd),
    }
}

/// Checks an fd's `/proc/.../fdinfo` text for a counter-mode eventfd.
fn check_fdinfo(info: &[u8]) -> Result<(), EventFdError> {
    let mut eventfd = false;
    for line in info.split(|&byte| byte == b'\n') {
        if line.starts_with(b"eventfd-count:") {
            eventfd = true;
        } else if let Some(semaphore) = line.strip_prefix(b"eventfd-semaphore:")
            && semaphore.trim_ascii() != b"0"
        {
            return Err(EventFdError::Semaphore);
        }
    }
    if eventfd {
        Ok(())
    } else {
        Err(EventFdError::NotEventFd)
    }
}

/// `futex_wake` count that wakes every waiter: the kernel reads it as an `int`.
const WAKE_ALL: u32 = i32::MAX as u32;

/// Sleeps on `event`'s epoch word while it still holds `epoch`:
/// `futex(FUTEX_WAIT)` on the word, shared between processes.
///
/// Returns `Ok` when woken by [`futex_wake`], when the epoch is no longer
/// `epoch` (`EAGAIN`: a wake came first), and when interrupted (`EINTR`): the
/// caller re-checks its condition in every case. [`SleepFailure::TimedOut`]
/// after `timeout` (`None` waits for ever, as does one too long to represent).
#[doc(alias("futex", "FUTEX_WAIT"))]
pub fn futex_wait(
    event: &Event,
    epoch: u32,
    timeout: Option<Duration>,
) -> Result<(), SleepFailure> {
    let word = event.futex_word();
    let timeout = timeout.and_then(|timeout| Timespec::try_from(timeout).ok());
    // No `Flags::PRIVATE`: the word is in memory other processes map, at other
    // addresses; only a shared futex is keyed by the memory itself.
    match futex::wait(word, futex::Flags::empty(), epoch, timeout.as_ref()) {
        Ok(()) | Err(Errno::AGAIN | Errno::INTR) => Ok(()),
        Err(Errno::TIMEDOUT) => Err(SleepFailure::TimedOut),
        Err(errno) => Err(SysError::new("futex(FUTEX_WAIT)", errno).into()),
    }
}

/// Wakes every thread, in any process, sleeping in [`futex_wait`] on `event`:
/// `futex(FUTEX_WAKE)`. Returns how many woke.
///
/// Call it after the epoch changed, as [`Producer::wake_needed`] does when it
/// returns `true`; a sleeper that has not yet gone to sleep then sees the new
/// epoch and does not.
#[doc(alias("futex", "FUTEX_WAKE"))]
pub fn futex_wake(event: &Event) -> Result<usize, SysError> {
    let word = event.futex_word();
    futex::wake(word, futex::Flags::empty(), WAKE_ALL)
        .map_err(SysError::from_call("futex(FUTEX_WAKE)"))
}

/// How a ring's consumer sleeps and its producer wakes it. Both sides must use
/// the same kind; see [Eventfd or futex](self#eventfd-or-futex).
#[derive(Debug)]
#[non_exhaustive]
pub enum Wakeup {
    /// Sleep in `poll` on the eventfd; wake by writing to it. Each side holds
    /// its own [`EventFd`] for the same kernel object (one side received the
    /// fd from the other).
    EventFd(EventFd),
    /// Sleep in `futex_wait` on the event's epoch; wake with `futex_wake`.
    Futex,
}

impl Wakeup {
    /// An eventfd wake-up on a new eventfd: [`EventFd::new`], which calls
    /// `eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)`.
    pub fn eventfd() -> Result<Self, SysError> {
        EventFd::new().map(Self::EventFd)
    }

    /// The eventfd, for an epoll set; `None` for a futex, which has no fd.
    pub fn eventfd_ref(&self) -> Option<&EventFd> {
        match self {
            Self::EventFd(fd) => Some(fd),
            Self::Futex => None,
        }
    }

    /// Wakes the consumer sleeping on `event`: [`EventFd::signal`] or
    /// [`futex_wake`]. Call it when [`Producer::wake_needed`] returns `true`
    /// (at any other time it is a harmless, wasted system call).
    #[doc(alias("write", "futex", "FUTEX_WAKE"))]
    pub fn wake(&self, event: &Event) -> Result<(), SysError> {
        match self {
            Self::EventFd(eventfd) => eventfd.signal(),
            Self::Futex => futex_wake(event).map(drop),
        }
    }

    /// Sleeps on `event` until woken, having announced itself at `epoch` (the
    /// `sleep` of [`Consumer::pop_or_sleep`], which
    /// [`Consumer::pop_blocking`] uses).
    ///
    /// Returns `Ok` when woken or spuriously (the caller re-checks),
    /// [`SleepFailure::TimedOut`] once `deadline` has passed (without a system
    /// call if it already had). `EINTR` is a spurious wake for a futex and
    /// retried for an eventfd.
    ///
    /// An eventfd sleep first [drains](EventFd::drain) what earlier wakes
    /// left in the counter, then returns at once if the epoch has moved (the
    /// drain took this sleep's wake), and otherwise polls, leaving the wake
    /// that ends the poll in the counter for the next sleep to drain. That
    /// keeps the `read` off the path from the producer's wake to the
    /// consumer's pop: one system call there, as for a blocking `read`. The
    /// drain sees a wake only after the producer advanced the epoch (it
    /// advances it before it writes), so a drained wake always shows. So
    /// `epoch` must be the one the announcement returned, and an eventfd must
    /// serve one ring's consumer only (another sleeper's drain could take
    /// this one's wake). The fd stays readable after a wake until the next
    /// sleep or [`EventFd::drain`]: an event loop that also watches it drains
    /// it itself.
    #[doc(alias("poll", "read", "futex", "FUTEX_WAIT"))]
    pub fn sleep(
        &self,
        event: &Event,
        epoch: u32,
        deadline: Option<Instant>,
    ) -> Result<(), SleepFailure> {
        let timeout = match deadline {
            None => None,
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return Err(SleepFailure::TimedOut),
            },
        };
        match self {
            Self::EventFd(eventfd) => {
                eventfd.drain()?;
                if event.epoch() != epoch {
                    return Ok(());
                }
                eventfd.poll_until(deadline)
            }
            Self::Futex => futex_wait(event, epoch, timeout),
        }
    }
}

impl From<EventFd> for Wakeup {
    fn from(eventfd: EventFd) -> Self {
        Self::EventFd(eventfd)
    }
}

/// How long a blocking pop retries before it sleeps.
///
/// Each spin is one [`Consumer::try_pop`] and a spin-loop hint: about 25 ns on
/// the reference machine (AMD EPYC, see `BASELINES.md`), where a blocking
/// wake-up takes about 5 us one way. Spinning for about as long as a sleep and
/// wake cost is the classic spin-then-block rule: if the element comes during
/// the spin, the wake-up latency is saved; if not, the spin wasted at most what
/// the sleep costs anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpinThenBlock {
    /// Pops to retry after the first look finds the ring empty, before
    /// sleeping; 0 sleeps at once.
    ///
    /// Keep it low when threads outnumber cores: a spinning consumer may be
    /// holding the core its producer needs.
    pub spins: u32,
}

impl SpinThenBlock {
    /// The default spin budget: 200 spins, about 5 us on the reference
    /// machine, the cost of a sleep and wake.
    pub const DEFAULT_SPINS: u32 = 200;

    /// Retries `spins` times, then sleeps.
    pub const fn new(spins: u32) -> Self {
        Self { spins }
    }
}

impl Default for SpinThenBlock {
    /// [`DEFAULT_SPINS`](Self::DEFAULT_SPINS) spins.
    fn default() -> Self {
        Self::new(Self::DEFAULT_SPINS)
    }
}

/// Blocking pops, for a ring's consumer in a Linux process.
impl<T: Pod, K> Consumer<'_, T, K> {
    /// Pops the oldest element, waiting for one if the ring is empty: retries
    /// `strategy.spins` times, then sleeps through `wakeup` until the producer
    /// wakes it (see [`Consumer::pop_or_sleep`]).
    ///
    /// `timeout` `None` waits for ever (as does one too long to represent);
    /// otherwise [`BlockingPopError::TimedOut`] once it has passed. The
    /// producer must wake through the same kind of [`Wakeup`], e.g. with
    /// [`Producer::push_notify`].
    #[doc(alias("poll", "futex"))]
    pub fn pop_blocking(
        &mut self,
        wakeup: &Wakeup,
        strategy: SpinThenBlock,
        timeout: Option<Duration>,
    ) -> Result<T, BlockingPopError> {
        let deadline = deadline_after(timeout);
        self.pop_or_sleep(strategy.spins, |event, epoch| {
            wakeup.sleep(event, epoch, deadline)
        })
        .map_err(|err| match err {
            SleepError::Corrupted => BlockingPopError::Corrupted,
            SleepError::Sleep(failure) => failure.into(),
        })
    }
}

/// Pushes that wake a sleeping consumer, for a ring's producer in a Linux
/// process.
impl<T: Pod, K> Producer<'_, T, K> {
    /// Pushes `value`, then wakes the consumer through `wakeup` if it is
    /// asleep ([`Producer::wake_needed`]): no system call while it is awake.
    ///
    /// On [`PushNotifyError::Push`] nothing was pushed and the value is handed
    /// back. On [`PushNotifyError::Wake`] the value *was* pushed but the
    /// consumer may stay asleep until its timeout or the next wake: retry with
    /// `wakeup.wake(producer.peer_event())`.
    #[doc(alias("write", "futex"))]
    #[inline]
    pub fn push_notify(&mut self, value: T, wakeup: &Wakeup) -> Result<(), PushNotifyError<T>> {
        self.try_push(value).map_err(PushNotifyError::Push)?;
        if self.wake_needed() {
            wakeup
                .wake(self.peer_event())
                .map_err(PushNotifyError::Wake)?;
        }
        Ok(())
    }

    /// Pushes as many of `items` as fit ([`Producer::push_slice`]), then wakes
    /// the consumer if it is asleep: one check, and at most one wake, per
    /// batch. Returns how many were pushed (0 if the ring is full, in which
    /// case there is no check).
    ///
    /// On [`PushSliceNotifyError::Wake`] the items were pushed but the consumer
    /// may stay asleep, as for [`push_notify`](Self::push_notify).
    #[doc(alias("write", "futex"))]
    pub fn push_slice_notify(
        &mut self,
        items: &[T],
        wakeup: &Wakeup,
    ) -> Result<usize, PushSliceNotifyError> {
        let pushed = self
            .push_slice(items)
            .map_err(|Corrupted| PushSliceNotifyError::Corrupted)?;
        if pushed > 0 && self.wake_needed() {
            wakeup
                .wake(self.peer_event())
                .map_err(|error| PushSliceNotifyError::Wake { pushed, error })?;
        }
        Ok(pushed)
    }
}

/// Why an eventfd received from a peer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventFdError {
    /// A system call failed; the error names it and keeps the `Errno`.
    Sys(SysError),
    /// The fd is not an eventfd.
    NotEventFd,
    /// The eventfd is in semaphore mode (`EFD_SEMAPHORE`), where a read takes
    /// one signal instead of all.
    Semaphore,
}

impl From<SysError> for EventFdError {
    fn from(err: SysError) -> Self {
        Self::Sys(err)
    }
}

impl fmt::Display for EventFdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sys(err) => fmt::Display::fmt(err, f),
            Self::NotEventFd => f.write_str("the fd is not an eventfd"),
            Self::Semaphore => f.write_str("the eventfd is in semaphore mode (EFD_SEMAPHORE)"),
        }
    }
}

impl core::error::Error for EventFdError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Sys(err) => Some(err),
            _ => None,
        }
    }
}

/// Why a sleep ended without a wake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SleepFailure {
    /// The timeout or deadline passed.
    TimedOut,
    /// A system call failed.
    Sys(SysError),
}

impl From<SysError> for SleepFailure {
    fn from(err: SysError) -> Self {
        Self::Sys(err)
    }
}

impl fmt::Display for SleepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TimedOut => f.write_str("timed out"),
            Self::Sys(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl core::error::Error for SleepFailure {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::TimedOut => None,
            Self::Sys(err) => Some(err),
        }
    }
}

/// Why [`Consumer::pop_blocking`] returned without an element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockingPopError {
    /// The timeout passed with the ring still empty.
    TimedOut,
    /// The producer's counter is impossible; see [`Corrupted`].
    Corrupted,
    /// Sleeping failed.
    Sys(SysError),
}

impl From<SleepFailure> for BlockingPopError {
    fn from(failure: SleepFailure) -> Self {
        match failure {
            SleepFailure::TimedOut => Self::TimedOut,
            SleepFailure::Sys(err) => Self::Sys(err),
        }
    }
}

impl fmt::Display for BlockingPopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TimedOut => f.write_str("timed out waiting for an element"),
            Self::Corrupted => fmt::Display::fmt(&Corrupted, f),
            Self::Sys(err) => write!(f, "waiting for an element failed: {err}"),
        }
    }
}

impl core::error::Error for BlockingPopError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::TimedOut => None,
            Self::Corrupted => Some(&Corrupted),
            Self::Sys(err) => Some(err),
        }
    }
}

/// Why [`Producer::push_notify`] failed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PushNotifyError<T> {
    /// Nothing was pushed; the value is inside.
    Push(PushError<T>),
    /// The value was pushed, but waking the consumer failed.
    Wake(SysError),
}

impl<T> fmt::Debug for PushNotifyError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Push(err) => f.debug_tuple("Push").field(err).finish(),
            Self::Wake(err) => f.debug_tuple("Wake").field(err).finish(),
        }
    }
}

impl<T> fmt::Display for PushNotifyError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Push(err) => fmt::Display::fmt(err, f),
            Self::Wake(err) => write!(f, "pushed, but waking the consumer failed: {err}"),
        }
    }
}

impl<T> core::error::Error for PushNotifyError<T> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Push(_) => None,
            Self::Wake(err) => Some(err),
        }
    }
}

/// Why [`Producer::push_slice_notify`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushSliceNotifyError {
    /// Nothing was pushed: the consumer's counter is impossible; see
    /// [`Corrupted`].
    Corrupted,
    /// Items were pushed, but waking the consumer failed.
    Wake {
        /// How many items were pushed.
        pushed: usize,
        /// The failed wake.
        error: SysError,
    },
}

impl fmt::Display for PushSliceNotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Corrupted => fmt::Display::fmt(&Corrupted, f),
            Self::Wake { pushed, error } => {
                write!(
                    f,
                    "pushed {pushed}, but waking the consumer failed: {error}"
                )
            }
        }
    }
}

impl core::error::Error for PushSliceNotifyError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Corrupted => Some(&Corrupted),
            Self::Wake { error, .. } => Some(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use core::sync::atomic::{AtomicBool, Ordering};
    use std::thread;

    use rustix::buffer::spare_capacity;
    use rustix::event::epoll;
    use static_assertions::assert_impl_all;

    use super::*;
    use crate::linux::shm::Segment;
    use crate::spsc::{Spsc, StaticSpsc};

    assert_impl_all!(EventFd: Send, Sync);
    assert_impl_all!(Wakeup: Send, Sync);

    /// A bound on every blocking call, so that a lost wake-up fails the test
    /// instead of hanging it. Never reached when the code is right.
    const NEVER: Duration = Duration::from_secs(20);

    /// The same kernel eventfd through a second fd, as a peer that received it
    /// would hold it.
    fn peer_of(eventfd: &EventFd) -> EventFd {
        EventFd::from_fd(eventfd.as_fd().try_clone_to_owned().unwrap()).unwrap()
    }

    /// The `Wakeup` a peer of `wakeup` would use.
    fn peer_wakeup(wakeup: &Wakeup) -> Wakeup {
        match wakeup {
            Wakeup::EventFd(eventfd) => Wakeup::EventFd(peer_of(eventfd)),
            Wakeup::Futex => Wakeup::Futex,
        }
    }

    fn eventfd_of(wakeup: &Wakeup) -> &EventFd {
        match wakeup {
            Wakeup::EventFd(eventfd) => eventfd,
            Wakeup::Futex => panic!("not an eventfd wake-up"),
        }
    }

    /// Runs `consume` on this thread while another pushes `0..count` through
    /// `tx` in order with `push_notify`, yielding while the ring is full. If
    /// `consume` panics (a lost wake-up timing out, say), the producer stops
    /// instead of waiting for ever on a full ring, so the test fails.
    fn pushing_while(
        tx: &mut Producer<'_, u64>,
        wakeup: &Wakeup,
        count: u64,
        consume: impl FnOnce(),
    ) {
        /// Tells the producer the consumer is gone, however it leaves.
        struct Gone<'a>(&'a AtomicBool);
        impl Drop for Gone<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let gone = AtomicBool::new(false);
        thread::scope(|s| {
            s.spawn(|| {
                for seq in 0..count {
                    let mut value = seq;
                    loop {
                        match tx.push_notify(value, wakeup) {
                            Ok(()) => break,
                            Err(PushNotifyError::Push(PushError::Full(back))) => {
                                if gone.load(Ordering::Relaxed) {
                                    return;
                                }
                                value = back;
                                thread::yield_now();
                            }
                            Err(err) => panic!("push {seq}: {err}"),
                        }
                    }
                }
            });
            let _gone = Gone(&gone);
            consume();
        });
    }

    /// A capacity-2 ring in a memfd, producer and consumer in two mappings (at
    /// two addresses, as in two processes); `count` messages through it, each
    /// side with its own `Wakeup`.
    fn ping_through_shared_memory(wakeup: Wakeup, strategy: SpinThenBlock, count: u64) {
        let len = Spsc::<u64>::required_size(2).unwrap();
        let mine = Segment::memfd("wake-test", len).unwrap();
        let peer = Segment::from_fd(mine.as_fd().try_clone_to_owned().unwrap()).unwrap();
        let mut tx = Spsc::<u64>::create(mine.region().expect("the segment's region"), 2)
            .unwrap()
            .into_producer();
        let mut rx = Spsc::<u64>::attach(peer.region().expect("the segment's region"))
            .unwrap()
            .into_consumer();
        let peer_wakeup = peer_wakeup(&wakeup);
        pushing_while(&mut tx, &peer_wakeup, count, || {
            for seq in 0..count {
                let popped = rx.pop_blocking(&wakeup, strategy, Some(NEVER));
                assert_eq!(
                    popped,
                    Ok(seq),
                    "{strategy:?}: {} in the ring, {:?}",
                    rx.len(),
                    rx.event()
                );
            }
        });
        assert_eq!(rx.try_pop(), Err(crate::spsc::PopError::Empty));
    }

    #[test]
    fn eventfd_blocking_pop_is_woken_by_push_notify() {
        let wakeup = Wakeup::eventfd().unwrap();
        ping_through_shared_memory(wakeup, SpinThenBlock::new(0), 5_000);
        ping_through_shared_memory(Wakeup::eventfd().unwrap(), SpinThenBlock::default(), 5_000);
    }

    #[test]
    fn futex_blocking_pop_is_woken_by_push_notify() {
        // Two mappings put the word at two addresses: a private futex would
        // never find the sleeper, and the pop would time out.
        ping_through_shared_memory(Wakeup::Futex, SpinThenBlock::new(0), 5_000);
        ping_through_shared_memory(Wakeup::Futex, SpinThenBlock::default(), 5_000);
    }

    #[test]
    fn blocking_pop_times_out_on_an_empty_ring() {
        let timeout = Duration::from_millis(50);
        for wakeup in [Wakeup::eventfd().unwrap(), Wakeup::Futex] {
            let mut ring = StaticSpsc::<u64, 2>::new();
            let (_tx, mut rx) = ring.split();
            for strategy in [SpinThenBlock::new(0), SpinThenBlock::default()] {
                let start = Instant::now();
                let popped = rx.pop_blocking(&wakeup, strategy, Some(timeout));
                assert_eq!(popped, Err(BlockingPopError::TimedOut), "{wakeup:?}");
                assert!(start.elapsed() >= timeout, "{wakeup:?}");
            }
            // Zero: one look, then give up.
            let popped = rx.pop_blocking(&wakeup, SpinThenBlock::new(0), Some(Duration::ZERO));
            assert_eq!(popped, Err(BlockingPopError::TimedOut));
        }
    }

    #[test]
    fn blocking_pop_takes_what_is_there_without_sleeping() {
        let mut ring = StaticSpsc::<u64, 2>::new();
        let (mut tx, mut rx) = ring.split();
        tx.try_push(9).unwrap();
        let popped = rx.pop_blocking(&Wakeup::Futex, SpinThenBlock::new(0), Some(Duration::ZERO));
        assert_eq!(popped, Ok(9));
    }

    #[test]
    fn waits_time_out() {
        let timeout = Duration::from_millis(30);
        let eventfd = EventFd::new().unwrap();
        let start = Instant::now();
        assert_eq!(eventfd.wait(Some(timeout)), Err(SleepFailure::TimedOut));
        assert!(start.elapsed() >= timeout);

        let mut ring = StaticSpsc::<u64, 2>::new();
        let (tx, _rx) = ring.split();
        let event = tx.event();
        let start = Instant::now();
        assert_eq!(
            futex_wait(event, event.epoch(), Some(timeout)),
            Err(SleepFailure::TimedOut)
        );
        assert!(start.elapsed() >= timeout);
        // A stale epoch returns at once: a wake already happened.
        assert_eq!(
            futex_wait(event, event.epoch().wrapping_add(1), None),
            Ok(())
        );
        assert_eq!(futex_wake(event), Ok(0));
    }

    #[test]
    fn eventfd_signal_wait_and_drain() {
        let eventfd = EventFd::new().unwrap();
        let peer = peer_of(&eventfd);
        assert_eq!(eventfd.drain(), Ok(0));
        peer.signal().unwrap();
        peer.signal().unwrap();
        assert_eq!(eventfd.drain(), Ok(2), "one read takes every signal");
        peer.signal().unwrap();
        assert_eq!(eventfd.wait(None), Ok(()));
        assert_eq!(eventfd.drain(), Ok(0), "wait drained it");
        // Signalled before the wait: no wait at all.
        peer.signal().unwrap();
        assert_eq!(eventfd.wait(Some(Duration::ZERO)), Ok(()));
        // Woken by another thread.
        thread::scope(|s| {
            s.spawn(|| peer.signal().unwrap());
            assert_eq!(eventfd.wait(Some(NEVER)), Ok(()));
        });
    }

    #[test]
    fn signal_on_a_saturated_counter_succeeds() {
        let eventfd = EventFd::new().unwrap();
        let max = u64::MAX - 1;
        rustix::io::write(&eventfd, &max.to_ne_bytes()).unwrap();
        assert_eq!(eventfd.signal(), Ok(()));
        assert_eq!(eventfd.drain(), Ok(max));
    }

    #[test]
    fn drain_never_blocks_even_if_the_peer_clears_o_nonblock() {
        let eventfd = EventFd::new().unwrap();
        let mut probe = [0; 8];
        if let Err(Errno::OPNOTSUPP | Errno::NOSYS | Errno::PERM) = rustix::io::preadv2(
            &eventfd,
            &mut [IoSliceMut::new(&mut probe)],
            u64::MAX,
            ReadWriteFlags::NOWAIT,
        ) {
            // Older kernels' eventfds refuse RWF_NOWAIT: nothing to test.
            return;
        }
        rustix::fs::fcntl_setfl(&eventfd, OFlags::empty()).unwrap();
        assert_eq!(eventfd.drain(), Ok(0));
        eventfd.signal().unwrap();
        assert_eq!(eventfd.wait(Some(NEVER)), Ok(()));
    }

    #[test]
    fn awake_consumer_costs_the_producer_no_wake_up() {
        const COUNT: u64 = 5_000;
        let mut ring = StaticSpsc::<u64, 64>::new();
        let (mut tx, mut rx) = ring.split();
        let wakeup = Wakeup::eventfd().unwrap();
        pushing_while(&mut tx, &wakeup, COUNT, || {
            // Never announces itself: polls with `try_pop` only.
            let mut next = 0;
            while next < COUNT {
                match rx.try_pop() {
                    Ok(value) => {
                        assert_eq!(value, next);
                        next += 1;
                    }
                    // Yields so a busy machine still runs the producer.
                    Err(_) => thread::yield_now(),
                }
            }
        });
        // No wake: the counter was never written, and the epoch never moved.
        let mut count = [0; 8];
        assert_eq!(
            rustix::io::read(eventfd_of(&wakeup), &mut count),
            Err(Errno::AGAIN)
        );
        assert_eq!(tx.peer_event().epoch(), 0);
    }

    #[test]
    fn push_notify_wakes_once_per_sleep_and_batch() {
        let mut ring = StaticSpsc::<u64, 8>::new();
        let (mut tx, mut rx) = ring.split();
        let wakeup = Wakeup::eventfd().unwrap();
        let eventfd = eventfd_of(&wakeup);

        tx.push_notify(1, &wakeup).unwrap();
        assert_eq!(eventfd.drain(), Ok(0), "consumer awake: no wake");
        assert_eq!(rx.try_pop(), Ok(1));

        assert!(rx.prepare_to_sleep().unwrap().is_some());
        assert_eq!(tx.push_slice_notify(&[2, 3, 4], &wakeup), Ok(3));
        assert_eq!(eventfd.drain(), Ok(1), "one wake for the batch");
        tx.push_notify(5, &wakeup).unwrap();
        assert_eq!(eventfd.drain(), Ok(0), "the announcement was used up");
        assert_eq!(tx.push_slice_notify(&[], &wakeup), Ok(0));

        let mut out = [0; 8];
        assert_eq!(rx.pop_into(&mut out), Ok(4));
        assert_eq!(out[..4], [2, 3, 4, 5]);
    }

    #[test]
    fn push_errors_hand_back_the_value_or_say_it_was_pushed() {
        let mut ring = StaticSpsc::<u64, 2>::new();
        let (mut tx, mut rx) = ring.split();
        // Writing to a pipe's read end fails (EBADF): a wake that fails.
        let (read_end, _write_end) = rustix::pipe::pipe().unwrap();
        let broken = Wakeup::EventFd(EventFd::from_fd_trusted(read_end));

        assert!(rx.prepare_to_sleep().unwrap().is_some());
        let err = tx.push_notify(1, &broken).unwrap_err();
        assert_eq!(
            err,
            PushNotifyError::Wake(SysError::new("write", Errno::BADF))
        );
        let message = err.to_string();
        assert!(
            message.starts_with("pushed, but waking the consumer failed: write: "),
            "{message}"
        );
        assert_eq!(rx.try_pop(), Ok(1), "the value was pushed");

        assert!(rx.prepare_to_sleep().unwrap().is_some());
        assert_eq!(
            tx.push_slice_notify(&[2, 3, 4], &broken),
            Err(PushSliceNotifyError::Wake {
                pushed: 2,
                error: SysError::new("write", Errno::BADF)
            })
        );
        match tx.push_notify(5, &Wakeup::Futex) {
            Err(PushNotifyError::Push(PushError::Full(5))) => {}
            other => panic!("expected Full(5), got {other:?}"),
        }
        assert_eq!((rx.try_pop(), rx.try_pop()), (Ok(2), Ok(3)));
    }

    #[test]
    fn blocking_pop_reports_a_corrupt_producer() {
        let len = Spsc::<u64>::required_size(2).unwrap();
        let seg = Segment::memfd("corrupt", len).unwrap();
        let (mut tx, mut rx) = Spsc::<u64>::create(seg.region().expect("the segment's region"), 2)
            .unwrap()
            .split();
        // A second producer through a second mapping, as a faulty peer: it
        // republishes an old head. (Up to a ring's worth behind the tail, a
        // head may just not be published yet, and its stamps are not what
        // the consumer expects: the ring merely looks empty.)
        let peer = Segment::from_fd(seg.as_fd().try_clone_to_owned().unwrap()).unwrap();
        let mut rogue = Spsc::<u64>::attach(peer.region().expect("the segment's region"))
            .unwrap()
            .into_producer();
        for round in 0..4 {
            tx.push_slice(&[round, round + 1]).unwrap();
            assert_eq!((rx.try_pop(), rx.try_pop()), (Ok(round), Ok(round + 1)));
        }
        // Its head, 1, is now more than a ring's worth behind the tail, 8.
        rogue.try_push(3).unwrap();
        let popped = rx.pop_blocking(&Wakeup::Futex, SpinThenBlock::default(), Some(NEVER));
        assert_eq!(popped, Err(BlockingPopError::Corrupted));
    }

    #[test]
    fn eventfd_is_pollable_with_epoll() {
        let eventfd = EventFd::new().unwrap();
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
        epoll::add(
            &epoll,
            &eventfd,
            epoll::EventData::new_u64(7),
            epoll::EventFlags::IN,
        )
        .unwrap();
        let now = Timespec::try_from(Duration::ZERO).unwrap();
        let never = Timespec::try_from(NEVER).unwrap();
        let mut events = Vec::with_capacity(4);

        epoll::wait(&epoll, spare_capacity(&mut events), Some(&now)).unwrap();
        assert!(events.is_empty(), "not readable before a signal");

        eventfd.signal().unwrap();
        epoll::wait(&epoll, spare_capacity(&mut events), Some(&never)).unwrap();
        assert_eq!(events.len(), 1);
        let (flags, data) = (events[0].flags, events[0].data);
        assert!(flags.contains(epoll::EventFlags::IN));
        assert_eq!(data.u64(), 7);

        assert_eq!(eventfd.drain(), Ok(1));
        events.clear();
        epoll::wait(&epoll, spare_capacity(&mut events), Some(&now)).unwrap();
        assert!(events.is_empty(), "not readable once drained");
    }

    #[test]
    fn epoll_driven_consumer_gets_every_message() {
        const COUNT: u64 = 5_000;
        let mut ring = StaticSpsc::<u64, 4>::new();
        let (mut tx, mut rx) = ring.split();
        let eventfd = EventFd::new().unwrap();
        let producer_wakeup = Wakeup::EventFd(peer_of(&eventfd));
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
        epoll::add(
            &epoll,
            &eventfd,
            epoll::EventData::new_u64(0),
            epoll::EventFlags::IN,
        )
        .unwrap();
        let never = Timespec::try_from(NEVER).unwrap();

        pushing_while(&mut tx, &producer_wakeup, COUNT, || {
            let mut next = 0;
            let mut events = Vec::with_capacity(1);
            while next < COUNT {
                while let Ok(value) = rx.try_pop() {
                    assert_eq!(value, next);
                    next += 1;
                }
                if next == COUNT {
                    break;
                }
                if rx.prepare_to_sleep().unwrap().is_some() {
                    events.clear();
                    epoll::wait(&epoll, spare_capacity(&mut events), Some(&never)).unwrap();
                    assert_eq!(events.len(), 1, "woken, not timed out");
                    eventfd.drain().unwrap();
                }
            }
        });
    }

    #[test]
    fn from_fd_accepts_only_counter_mode_eventfds() {
        let eventfd = EventFd::new().unwrap();
        let fd = OwnedFd::from(peer_of(&eventfd));
        assert!(EventFd::from_fd(fd).is_ok());

        let (read_end, write_end) = rustix::pipe::pipe().unwrap();
        for fd in [read_end, write_end] {
            let err = EventFd::from_fd(fd).unwrap_err();
            assert_eq!(err, EventFdError::NotEventFd);
            assert_eq!(err.to_string(), "the fd is not an eventfd");
        }

        let semaphore = rustix::event::eventfd(
            0,
            EventfdFlags::SEMAPHORE | EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC,
        )
        .unwrap();
        let info = std::fs::read_to_string(format!(
            "/proc/thread-self/fdinfo/{}",
            semaphore.as_raw_fd()
        ))
        .unwrap();
        if info.contains("eventfd-semaphore") {
            assert_eq!(
                EventFd::from_fd(semaphore).unwrap_err(),
                EventFdError::Semaphore
            );
        }
    }

    #[test]
    fn fdinfo_is_parsed() {
        let eventfd = b"pos:\t0\nflags:\t02004002\nmnt_id:\t17\nino:\t1038\n\
            eventfd-count:                0\neventfd-id: 1\neventfd-semaphore: 0\n";
        assert_eq!(check_fdinfo(eventfd), Ok(()));
        let old_kernel = b"pos:\t0\nflags:\t02004002\nmnt_id:\t17\neventfd-count: 5\n";
        assert_eq!(check_fdinfo(old_kernel), Ok(()));
        let semaphore = b"pos:\t0\neventfd-count: 0\neventfd-semaphore: 1\n";
        assert_eq!(check_fdinfo(semaphore), Err(EventFdError::Semaphore));
        let pipe = b"pos:\t0\nflags:\t02000000\nmnt_id:\t16\nino:\t42821\n";
        assert_eq!(check_fdinfo(pipe), Err(EventFdError::NotEventFd));
        assert_eq!(check_fdinfo(b""), Err(EventFdError::NotEventFd));
    }
}
