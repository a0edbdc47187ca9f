//! Who is at the other end of a connection: `SO_PEERCRED`.

use std::os::fd::{AsRawFd, BorrowedFd};

use rustix::io::Errno;
use rustix::process::{Gid, Pid, Uid};

use crate::linux::SysError;

/// Who is at the other end of a connection, as the kernel saw it when the
/// connection was made (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Credentials {
    /// Process id of the peer, as this process's pid namespace numbers it;
    /// `None` when the peer lives in a pid namespace this one cannot see (a
    /// client on the host talking to a daemon in a container: the kernel
    /// reports pid 0).
    pub pid: Option<Pid>,
    /// Effective user id of the peer. A peer whose uid has no mapping in this
    /// process's user namespace shows as the overflow uid
    /// (`/proc/sys/kernel/overflowuid`, usually 65534, `nobody`).
    pub uid: Uid,
    /// Effective group id of the peer.
    pub gid: Gid,
}

impl Credentials {
    /// The credentials of the socket `fd`'s peer:
    /// `getsockopt(SO_PEERCRED)`
    /// ([unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html)).
    pub(super) fn of_peer(fd: BorrowedFd<'_>) -> Result<Self, SysError> {
        let cred = so_peercred(fd)?;
        Ok(Self {
            // The kernel never reports a negative pid; 0 means "not visible".
            pid: if cred.pid > 0 {
                Pid::from_raw(cred.pid)
            } else {
                None
            },
            uid: Uid::from_raw(cred.uid),
            gid: Gid::from_raw(cred.gid),
        })
    }
}

/// `getsockopt(SO_PEERCRED)` into plain integers.
///
/// This is the one call the adapters make through libc: rustix's
/// `socket_peercred` reads into a `UCred` whose `pid` is a non-zero `Pid`, and
/// the kernel writes pid 0 for a peer in a pid namespace this process cannot
/// see, which would make that value invalid.
fn so_peercred(fd: BorrowedFd<'_>) -> Result<libc::ucred, SysError> {
    const CALL: &str = "getsockopt(SO_PEERCRED)";
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    const SIZE: usize = size_of::<libc::ucred>();
    // The kernel's `struct ucred`: pid, uid, gid, 32 bits each.
    const _: () = assert!(SIZE == 12);
    let mut len = SIZE as libc::socklen_t;
    // SAFETY: `fd` is borrowed, so it stays open for the call. `cred` is a live,
    // writable `ucred` of exactly `len` bytes, and `len` a live `socklen_t`; the
    // kernel writes at most `len` bytes to the one (its `struct ucred`, whose
    // layout `libc::ucred` mirrors) and a length to the other. `ucred` is three
    // plain integers, so whatever bytes the kernel writes leave it a valid
    // value, and it was initialised before the call.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &raw mut len,
        )
    };
    if rc != 0 {
        let errno = std::io::Error::last_os_error()
            .raw_os_error()
            .map_or(Errno::IO, Errno::from_raw_os_error);
        return Err(SysError::new(CALL, errno));
    }
    if (len as usize) < SIZE {
        // Linux always writes a whole `ucred`; refuse a partial one regardless.
        return Err(SysError::new(CALL, Errno::INVAL));
    }
    Ok(cred)
}
