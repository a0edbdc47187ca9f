//! Inspect live shared-memory structures without disturbing them:
//!
//! `cargo run --example inspect -- [--json] TARGET...`
//!
//! A TARGET is
//! - `/name`: a named segment in `/dev/shm` (opened read-only; its
//!   creator's liveness asked of its life lock, which places no lock);
//! - a path, such as `/proc/<pid>/fd/<n>`: a sealed memfd another process
//!   holds (opened `O_RDONLY`, mapped `PROT_READ`);
//! - `--socket PATH` (or `--socket @abstract`): a running daemon's
//!   listening socket. The tool does not connect (that would start a
//!   session): it finds the socket's inode in `/proc/net/unix`, the
//!   processes holding it in `/proc/*/fd`, and inspects each of their memfds.
//!   Reading another process's fds needs its uid, or root.
//!
//! For each region it prints the header (kind, ABI version, byte order,
//! element size and stride, capacity, type tag), the fill level, indices and
//! counters per kind (each lane of a fan-in set, each part of a laid-out
//! segment, recursively), creator liveness where known, and whatever is
//! corrupted; as a table, or as one JSON document with `--json`. Everything
//! is mapped read-only: the tool cannot change a byte of what it inspects.
//! Broadcast readers keep their cursors in their own processes, so their lag
//! is not shown.
//!
//! # Exit codes
//! 0: every region healthy; 1: usage, or a target that could not be opened
//! (the message names it); 2: corruption found. A daemon's memfd that
//! cannot be mapped (closed meanwhile, or not sealed: not this crate's) is
//! listed as not inspected and changes no exit code.

use std::fmt::Write as _;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::process::ExitCode;

use ipc_primitives::inspect::{Figures, Inspection, Problem, inspect};
use ipc_primitives::linux::shm::{Liveness, OpenOptions, Segment};

#[path = "support/chain.rs"]
mod chain;

use chain::chain;

/// How deep layouts nested in layouts are followed.
const MAX_DEPTH: u32 = 8;

const USAGE: &str = "usage: inspect [--json] TARGET...\n  \
    TARGET: /name (a named segment), a path such as /proc/<pid>/fd/<n> (a memfd), \
    or --socket PATH|@abstract (a running daemon's memfds)";

type Error = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(healthy) => ExitCode::from(if healthy { 0 } else { 2 }),
        Err(err) => {
            eprintln!("inspect: {err}");
            ExitCode::from(1)
        }
    }
}

/// Inspects every target; whether all were healthy.
fn run(args: &[String]) -> Result<bool, Error> {
    let mut json = false;
    let mut targets = Vec::new();
    let mut named = 0;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json = true,
            "--socket" => {
                let socket = args.next().ok_or(USAGE)?;
                targets.extend(daemon_memfds(socket)?);
                named += 1;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(true);
            }
            target if target.starts_with('/') => {
                targets.push(open(target)?);
                named += 1;
            }
            _ => return Err(USAGE.into()),
        }
    }
    if named == 0 {
        return Err(USAGE.into());
    }
    let mut healthy = true;
    let mut regions = Vec::new();
    for target in &targets {
        let mut fields = vec![("target", J::S(target.label.clone()))];
        match &target.segment {
            Ok(segment) => {
                let region = segment
                    .read_region()
                    .map_err(|err| format!("{}: {}", target.label, chain(&err)))?;
                let (node, ok) = describe(inspect(region), 0);
                healthy &= ok;
                fields.push(("bytes", J::N(segment.len() as u64)));
                fields.push(("creator", J::S(target.liveness.clone())));
                fields.extend(node);
            }
            Err(why) => fields.push(("status", J::S(format!("not inspected: {why}")))),
        }
        regions.push(J::O(fields));
    }
    let document = J::O(vec![("healthy", J::B(healthy)), ("regions", J::A(regions))]);
    let mut out = String::new();
    if json {
        document.json(&mut out);
        out.push('\n');
    } else {
        document.table(&mut out, 0);
    }
    print!("{out}");
    Ok(healthy)
}

/// A mapped region to inspect, named as the user named it; or, for a
/// daemon's memfd, why it could not be mapped (it was closed meanwhile, or
/// is not sealed, so not one of this crate's).
struct Target {
    label: String,
    liveness: String,
    segment: Result<Segment, String>,
}

/// A named segment (`/name`, one slash) or a memfd path.
fn open(target: &str) -> Result<Target, Error> {
    if !target[1..].contains('/') {
        let segment = OpenOptions::new()
            .read_only(true)
            .open(target)
            .map_err(|err| chain(&err))?;
        let liveness = match segment.creator_alive() {
            Liveness::Alive => "alive (holds its life lock)",
            Liveness::Gone => "gone (its life lock is free)",
            _ => "unknown",
        };
        return Ok(Target {
            label: target.to_owned(),
            liveness: liveness.to_owned(),
            segment: Ok(segment),
        });
    }
    // `O_RDONLY | O_CLOEXEC`; a `/proc/<pid>/fd/<n>` link reopens the object.
    let file = File::open(target).map_err(|err| format!("{target}: {err}{}", proc_hint(target)))?;
    let segment = Segment::from_fd_read_only(OwnedFd::from(file))
        .map_err(|err| format!("{target}: {}", chain(&err)))?;
    let liveness = match holder_pid(target) {
        Some(pid) if std::path::Path::new(&format!("/proc/{pid}")).exists() => {
            format!("unknown (holder pid {pid} alive)")
        }
        Some(pid) => format!("unknown (holder pid {pid} gone)"),
        None => "unknown".to_owned(),
    };
    Ok(Target {
        label: target.to_owned(),
        liveness,
        segment: Ok(segment),
    })
}

/// The pid in a `/proc/<pid>/fd/<n>` path.
fn holder_pid(path: &str) -> Option<u32> {
    let rest = path.strip_prefix("/proc/")?;
    let (pid, fd) = rest.split_once("/fd/")?;
    fd.parse::<u32>().ok()?;
    pid.parse().ok()
}

/// What to say when a `/proc` path cannot be read.
fn proc_hint(path: &str) -> &'static str {
    if path.starts_with("/proc/") {
        " (another process's fds need its uid, or root)"
    } else {
        ""
    }
}

/// The memfds of every process that holds the listening socket `socket`
/// (a path, or `@name` for an abstract one), found without connecting.
fn daemon_memfds(socket: &str) -> Result<Vec<Target>, Error> {
    let inodes = socket_inodes(socket).map_err(|err| format!("socket {socket:?}: {err}"))?;
    if inodes.is_empty() {
        return Err(format!("socket {socket:?}: no socket is bound there").into());
    }
    let links: Vec<String> = inodes
        .iter()
        .map(|inode| format!("socket:[{inode}]"))
        .collect();
    let mut pids = Vec::new();
    let mut refused = 0;
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            refused += 1;
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|link| links.iter().any(|want| link.as_os_str() == want.as_str()))
        });
        if holds {
            pids.push(pid);
        }
    }
    if pids.is_empty() {
        return Err(format!(
            "socket {socket:?}: no process found holding it ({refused} processes' fds \
             could not be read: another uid's fds need that uid, or root)"
        )
        .into());
    }
    let mut targets = Vec::new();
    for pid in pids {
        let dir = format!("/proc/{pid}/fd");
        let fds = std::fs::read_dir(&dir).map_err(|err| format!("{dir}: {err}"))?;
        let mut memfds: Vec<(u32, String)> = fds
            .flatten()
            .filter_map(|fd| {
                let link = std::fs::read_link(fd.path()).ok()?;
                let link = link.to_str()?;
                let n = fd.file_name().to_str()?.parse().ok()?;
                link.starts_with("/memfd:").then(|| (n, link.to_owned()))
            })
            .collect();
        memfds.sort();
        for (n, link) in memfds {
            let path = format!("{dir}/{n}");
            let label = format!("{path} ({link})");
            targets.push(match open(&path) {
                Ok(target) => Target { label, ..target },
                Err(err) => Target {
                    label,
                    liveness: String::new(),
                    segment: Err(err.to_string()),
                },
            });
        }
    }
    Ok(targets)
}

/// `NLMSG_DONE`, `NLMSG_ERROR`, `SOCK_DIAG_BY_FAMILY` (linux/netlink.h,
/// linux/sock_diag.h).
const NLMSG_DONE: u16 = 3;
const NLMSG_ERROR: u16 = 2;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLM_F_REQUEST | NLM_F_DUMP`.
const DUMP_REQUEST: u16 = 0x1 | 0x300;
/// `UDIAG_SHOW_NAME | UDIAG_SHOW_VFS`, and the attributes they add
/// (linux/unix_diag.h).
const SHOW_NAME_AND_VFS: u32 = 0x1 | 0x2;
const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_VFS: u16 = 1;
/// Most datagrams read from one dump (a bound, not an expected count).
const MAX_DUMP_READS: usize = 100_000;

/// The inodes of the Unix sockets bound at `socket`, from the kernel's
/// socket table (`NETLINK_SOCK_DIAG`, what `ss -x` reads): a path socket is
/// matched by the device and inode of its file (the name the kernel
/// recorded at bind may since have been renamed), an abstract one
/// (`@name`) by its name.
fn socket_inodes(socket: &str) -> Result<Vec<u32>, Error> {
    use rustix::net::{
        AddressFamily, RecvFlags, SendFlags, SocketType, netlink, recv, sendto, socket as open,
    };
    let file = match socket.strip_prefix('@') {
        Some(_) => None,
        None => {
            let stat = rustix::fs::stat(socket)?;
            if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::Socket {
                return Err("not a socket".into());
            }
            // The kernel's own encoding of a device: major << 20 | minor.
            let dev = rustix::fs::major(stat.st_dev) << 20 | rustix::fs::minor(stat.st_dev);
            // The diag attribute holds the inode's low 32 bits: truncation intended.
            Some((stat.st_ino as u32, dev))
        }
    };
    let diag = open(
        AddressFamily::NETLINK,
        SocketType::DGRAM,
        Some(netlink::SOCK_DIAG),
    )?;
    // nlmsghdr (len, type, flags, seq, pid), then unix_diag_req (family,
    // protocol, pad, states, ino, show, cookie[2]).
    let mut request = Vec::with_capacity(40);
    request.extend(40_u32.to_ne_bytes());
    request.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    request.extend(DUMP_REQUEST.to_ne_bytes());
    request.extend([0; 8]);
    request.extend([rustix::net::AddressFamily::UNIX.as_raw() as u8, 0, 0, 0]);
    request.extend(u32::MAX.to_ne_bytes());
    request.extend(0_u32.to_ne_bytes());
    request.extend(SHOW_NAME_AND_VFS.to_ne_bytes());
    request.extend([0; 8]);
    sendto(
        &diag,
        &request,
        SendFlags::empty(),
        &netlink::SocketAddrNetlink::new(0, 0),
    )?;
    let mut found = Vec::new();
    let mut buf = vec![0_u8; 64 * 1024];
    for _ in 0..MAX_DUMP_READS {
        let (_, len) = recv(&diag, &mut buf[..], RecvFlags::empty())?;
        let mut messages = &buf[..len.min(buf.len())];
        while messages.len() >= 16 {
            let msg_len = u32_at(messages, 0) as usize;
            let kind = u16::from_ne_bytes([messages[4], messages[5]]);
            if msg_len < 16 || msg_len > messages.len() {
                return Err("malformed sock_diag reply".into());
            }
            match kind {
                NLMSG_DONE => return Ok(found),
                NLMSG_ERROR => return Err("sock_diag refused the dump".into()),
                _ => {}
            }
            // unix_diag_msg: family, type, state, pad, ino, cookie[2].
            let body = &messages[16..msg_len];
            if body.len() >= 16 && matches_socket(socket, file, &body[16..]) {
                found.push(u32_at(body, 4));
            }
            messages = &messages[msg_len.next_multiple_of(4).min(messages.len())..];
        }
    }
    Err("sock_diag dump did not end".into())
}

/// Whether a socket's diag attributes name `socket`.
fn matches_socket(socket: &str, file: Option<(u32, u32)>, mut attrs: &[u8]) -> bool {
    while attrs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]);
        if len < 4 || len > attrs.len() {
            return false;
        }
        let value = &attrs[4..len];
        let named = match (kind, file) {
            (UNIX_DIAG_VFS, Some((ino, dev))) => {
                value.len() >= 8 && u32_at(value, 0) == ino && u32_at(value, 4) == dev
            }
            // An abstract name starts with a NUL where `@` is written.
            (UNIX_DIAG_NAME, None) => {
                value.first() == Some(&0) && value[1..] == socket.as_bytes()[1..]
            }
            _ => false,
        };
        if named {
            return true;
        }
        attrs = &attrs[len.next_multiple_of(4).min(attrs.len())..];
    }
    false
}

/// The native-endian `u32` at byte `at` (in bounds: the callers check).
fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// A JSON value: also what the table prints.
enum J {
    S(String),
    N(u64),
    B(bool),
    O(Vec<(&'static str, J)>),
    A(Vec<J>),
}

impl J {
    fn json(&self, out: &mut String) {
        match self {
            J::S(s) => quote(s, out),
            J::N(n) => write!(out, "{n}").unwrap_or(()),
            J::B(b) => write!(out, "{b}").unwrap_or(()),
            J::O(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    quote(key, out);
                    out.push(':');
                    value.json(out);
                }
                out.push('}');
            }
            J::A(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.json(out);
                }
                out.push(']');
            }
        }
    }

    /// Objects as `key  value` rows, nested ones indented under their key.
    fn table(&self, out: &mut String, indent: usize) {
        let pad = " ".repeat(indent);
        match self {
            J::O(fields) => {
                for (key, value) in fields {
                    match value {
                        J::O(_) | J::A(_) => {
                            let _ = writeln!(out, "{pad}{key}:");
                            value.table(out, indent + 2);
                        }
                        scalar => {
                            let _ = writeln!(out, "{pad}{key:<16}{}", scalar.scalar());
                        }
                    }
                }
            }
            J::A(items) => {
                for (i, item) in items.iter().enumerate() {
                    let _ = writeln!(out, "{pad}[{i}]");
                    item.table(out, indent + 2);
                }
            }
            scalar => {
                let _ = writeln!(out, "{pad}{}", scalar.scalar());
            }
        }
    }

    fn scalar(&self) -> String {
        match self {
            J::S(s) => s.clone(),
            J::N(n) => n.to_string(),
            J::B(b) => b.to_string(),
            J::O(_) | J::A(_) => String::new(),
        }
    }
}

/// `s` as a JSON string.
fn quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The fields describing one inspected region, and whether it (and every
/// part in it) is healthy.
fn describe(mut seen: Inspection<'_>, depth: u32) -> (Vec<(&'static str, J)>, bool) {
    let mut fields = Vec::new();
    if let Some(header) = seen.header() {
        let kind = header.kind().map_or_else(
            || format!("unknown ({})", header.kind),
            |kind| kind.to_string(),
        );
        fields.push(("kind", J::S(kind)));
        fields.push(("abi_version", J::N(header.version.into())));
        fields.push(("byte_order", J::S(header.byte_order().to_string())));
        fields.push(("element_size", J::N(header.elem.size.into())));
        fields.push(("element_stride", J::N(header.elem.stride.into())));
        fields.push(("capacity", J::N(header.capacity.into())));
        fields.push(("tag", J::S(format!("{:#x}", header.tag))));
    }
    let status = match seen.problem() {
        None => "ok".to_owned(),
        Some(problem) if problem.is_uninitialized() => format!("not initialized: {problem}"),
        Some(problem) => format!("corrupted: {problem}"),
    };
    fields.push(("status", J::S(status)));
    let mut healthy = seen.problem().is_none_or(Problem::is_uninitialized);
    match seen.figures().copied() {
        Some(Figures::Spsc { counters: c, fill }) => {
            let capacity = seen.header().map_or(0, |h| h.capacity);
            fields.push(("fill", J::S(format!("{fill} / {capacity}"))));
            fields.push(("head", J::N(c.pushed.into())));
            fields.push(("tail", J::N(c.popped.into())));
            fields.push(("full", J::N(c.full.into())));
            fields.push(("consumer_wakes", J::N(c.consumer_wakes.into())));
            fields.push(("producer_wakes", J::N(c.producer_wakes.into())));
            fields.push(("consumer_asleep", J::B(c.consumer_asleep)));
            fields.push(("producer_asleep", J::B(c.producer_asleep)));
            fields.push(("producer_closed", J::B(c.producer_closed)));
            fields.push(("consumer_closed", J::B(c.consumer_closed)));
        }
        Some(Figures::Records(c)) => {
            let capacity = seen.header().map_or(0, |h| h.capacity);
            fields.push((
                "fill_words",
                J::S(format!("{} / {capacity}", c.used_words())),
            ));
            records(&mut fields, &c);
        }
        Some(Figures::Broadcast { published, wakes }) => {
            fields.push(("published", J::N(published.into())));
            fields.push(("wakes", J::N(wakes.into())));
            fields.push(("reader_lag", J::S("unknown (kept by each reader)".into())));
        }
        Some(Figures::SeqLock { sequence, writing }) => {
            fields.push(("sequence", J::N(sequence)));
            fields.push(("writes", J::N(sequence / 2)));
            fields.push(("writing", J::B(writing)));
        }
        Some(Figures::Lanes { lanes, words }) => {
            fields.push(("lanes", J::N(lanes.into())));
            fields.push(("lane_words", J::N(words.into())));
            let list = (0..lanes as usize)
                .filter_map(|lane| seen.lane(lane))
                .map(|lane| {
                    let mut row = vec![
                        ("state", J::S(format!("{:?}", lane.state))),
                        (
                            "fill_words",
                            J::S(format!("{} / {words}", lane.counters.used_words())),
                        ),
                    ];
                    records(&mut row, &lane.counters);
                    J::O(row)
                })
                .collect();
            fields.push(("lane", J::A(list)));
        }
        Some(Figures::Layout { parts }) => {
            fields.push(("parts", J::N(parts.into())));
            let mut list = Vec::new();
            for part in seen.take_parts().into_iter().flatten() {
                let mut row = vec![
                    ("index", J::N(part.index.into())),
                    ("offset_lines", J::N(part.listed.offset_lines.into())),
                    ("length_lines", J::N(part.listed.len_lines.into())),
                ];
                match part.inspection {
                    Ok(inner) if depth < MAX_DEPTH => {
                        let (inner, ok) = describe(inner, depth + 1);
                        healthy &= ok;
                        row.extend(inner);
                    }
                    Ok(_) => row.push(("status", J::S("nested too deep; not shown".into()))),
                    Err(problem) => {
                        healthy = false;
                        row.push(("status", J::S(format!("corrupted: {problem}"))));
                    }
                }
                list.push(J::O(row));
            }
            fields.push(("part", J::A(list)));
        }
        // `Figures` may grow: a kind this tool does not know yet.
        Some(_) | None => {}
    }
    (fields, healthy)
}

/// A record ring's (or a lane's) counters.
fn records(fields: &mut Vec<(&'static str, J)>, c: &ipc_primitives::bytes::Counters) {
    fields.push(("head", J::N(c.published.into())));
    fields.push(("tail", J::N(c.consumed.into())));
    fields.push(("full", J::N(c.full.into())));
    fields.push(("wakes", J::N(c.wakes.into())));
    fields.push(("consumer_asleep", J::B(c.consumer_asleep)));
}
