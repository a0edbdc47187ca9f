//! `examples/inspect.rs` end to end, on live structures held by other
//! processes: a quote publisher's named seqlock (its creator alive, then
//! killed), a daemon's session ring through `/proc/<pid>/fd/<n>` and through
//! `--socket`, as a table and as JSON; inspection leaves every byte of the
//! region as it was (a checksum of the object, taken while its holders are
//! stopped, before and after); a corrupted segment exits 2. Nothing is left
//! in `/dev/shm`, no socket file, no process.
//!
//! Run: `cargo test --test inspect_tool` (builds the examples it runs).
#![cfg(all(feature = "linux", target_os = "linux", not(loom), not(miri)))]

mod example_bin;

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use example_bin::{Proc, shm_entries};
use ipc_primitives::linux::handshake::connect;
use ipc_primitives::linux::shm::{CreateOptions, unlink};
use ipc_primitives::linux::uds::UnixAddr;
use ipc_primitives::message::Message;
use ipc_primitives::spsc::Spsc;
use rustix::process::Signal;

fn examples() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| example_bin::build(&["inspect", "quote", "daemon"]))
}

/// Removes a path (a socket file) or unlinks a named segment when the test
/// ends, even early; either may already be gone.
enum Remove {
    File(String),
    Segment(String),
}

impl Drop for Remove {
    fn drop(&mut self) {
        match self {
            Remove::File(path) => drop(std::fs::remove_file(path)),
            Remove::Segment(name) => drop(unlink(name)),
        }
    }
}

/// Runs the inspect tool; its output.
fn inspect(args: &[&str]) -> Output {
    Command::new(examples().join("inspect"))
        .args(args)
        .output()
        .expect("run inspect")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8")
}

/// FNV-1a over every byte of the file.
fn checksum(path: &str) -> (usize, u64) {
    let bytes = std::fs::read(path).expect("read the object");
    let sum = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (bytes.len(), sum)
}

/// The `key  value` row of a table, trimmed.
fn row<'a>(table: &'a str, key: &str) -> Vec<&'a str> {
    table
        .lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let rest = line.strip_prefix(key)?;
            rest.starts_with(' ').then(|| rest.trim())
        })
        .collect()
}

#[test]
fn a_publishers_named_seqlock_as_a_table_and_as_json_untouched() {
    let name = format!("/ipcp-inspect-quote-{}", std::process::id());
    let _remove = Remove::Segment(name.clone());
    let mut publisher = Proc::run(&examples().join("quote"), &["publish", &name]);
    publisher.expect(&["publishing"]);
    // Stopped, it writes nothing: any change to the bytes is the tool's.
    publisher.signal(Signal::STOP);
    let object = format!("/dev/shm{name}");
    let before = checksum(&object);

    let table = inspect(&[&name]);
    assert_eq!(table.status.code(), Some(0), "{table:?}");
    let text = stdout(&table);
    assert_eq!(row(&text, "kind"), ["seqlock"], "{text}");
    assert_eq!(
        row(&text, "abi_version"),
        [ipc_primitives::ABI_VERSION.to_string()]
    );
    assert_eq!(row(&text, "byte_order"), ["native"]);
    assert_eq!(row(&text, "element_size"), ["32"]);
    assert_eq!(
        row(&text, "tag"),
        [format!("{:#x}", u64::from_be_bytes(*b"QUOTE\0v1"))]
    );
    assert_eq!(row(&text, "writing"), ["false"]);
    assert_eq!(row(&text, "creator"), ["alive (holds its life lock)"]);
    assert_eq!(row(&text, "status"), ["ok"]);
    let writes: u64 = row(&text, "writes")[0].parse().expect("a count");
    assert!(writes >= 1, "{text}");

    let json = inspect(&["--json", &name]);
    assert_eq!(json.status.code(), Some(0));
    let doc = stdout(&json);
    for field in [
        r#"{"healthy":true,"regions":[{"#.to_owned(),
        format!(r#""target":"{name}""#),
        r#""kind":"seqlock""#.to_owned(),
        format!(r#""writes":{writes},"writing":false"#),
        r#""status":"ok","sequence":"#.to_owned(),
    ] {
        assert!(doc.contains(&field), "{field} in {doc}");
    }
    assert_eq!(doc.lines().count(), 1, "one document");
    assert_eq!(
        checksum(&object),
        before,
        "the inspection changed the segment"
    );

    // Killed, it leaves the segment and a free life lock.
    publisher.signal(Signal::KILL);
    assert_eq!(publisher.finish().code(), None, "killed by a signal");
    let text = stdout(&inspect(&[&name]));
    assert_eq!(
        row(&text, "creator"),
        ["gone (its life lock is free)"],
        "{text}"
    );
    unlink(&name).expect("the dead publisher's segment, left for the inspection");
    assert!(
        !shm_entries()
            .iter()
            .any(|entry| entry.starts_with(&name[1..]))
    );
}

#[test]
fn a_daemons_session_ring_through_proc_and_through_its_socket() {
    let socket = std::env::temp_dir().join(format!("ipcp-inspect-{}.sock", std::process::id()));
    let socket = socket.to_str().expect("UTF-8").to_owned();
    let _remove = Remove::File(socket.clone());
    let mut daemon = Proc::run(&examples().join("daemon"), &["serve", &socket]);
    daemon.expect(&["listening"]);
    let mut conn = connect::<Message<120>>(&UnixAddr::path(&socket).expect("a path"))
        .expect("the daemon accepts");
    // Stopped, the daemon pops nothing: the records wait in the ring.
    daemon.signal(Signal::STOP);
    for n in 0..3 {
        let text = format!("client 7: request {n} served in {n} us");
        let record = Message::new(7, text.as_bytes()).expect("fits");
        conn.push_notify(record).expect("room");
    }
    let dir = format!("/proc/{}/fd", daemon.pid());
    let memfds: Vec<String> = std::fs::read_dir(&dir)
        .expect("the daemon's fds")
        .flatten()
        .filter(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|link| link.to_string_lossy().starts_with("/memfd:"))
        })
        .map(|fd| fd.path().to_string_lossy().into_owned())
        .collect();
    assert_eq!(memfds.len(), 1, "one session: {memfds:?}");
    let memfd = &memfds[0];
    let before = checksum(memfd);

    let table = inspect(&[memfd]);
    assert_eq!(table.status.code(), Some(0), "{table:?}");
    let text = stdout(&table);
    assert_eq!(row(&text, "kind"), ["SPSC ring"], "{text}");
    assert_eq!(row(&text, "capacity"), ["1024"]);
    assert_eq!(
        row(&text, "element_size"),
        [size_of::<Message<120>>().to_string()]
    );
    assert_eq!(row(&text, "fill"), ["3 / 1024"]);
    assert_eq!(row(&text, "head"), ["3"]);
    assert_eq!(row(&text, "tail"), ["0"]);
    assert_eq!(
        row(&text, "creator"),
        [format!("unknown (holder pid {} alive)", daemon.pid())]
    );

    let json = inspect(&["--json", "--socket", &socket]);
    assert_eq!(json.status.code(), Some(0), "{json:?}");
    let doc = stdout(&json);
    for field in [
        r#"{"healthy":true,"#.to_owned(),
        format!(r#""target":"{memfd} (/memfd:"#),
        r#""kind":"SPSC ring""#.to_owned(),
        r#""fill":"3 / 1024","head":3,"tail":0"#.to_owned(),
    ] {
        assert!(doc.contains(&field), "{field} in {doc}");
    }
    assert_eq!(checksum(memfd), before, "the inspection changed the ring");

    // A socket nobody holds is named in the error.
    let gone = inspect(&["--socket", "/nonexistent/ipcp.sock"]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("/nonexistent/ipcp.sock"));

    daemon.signal(Signal::CONT);
    drop(conn);
    drop(daemon.stdin.take()); // the daemon stops when its stdin closes
    assert_eq!(daemon.finish().code(), Some(0));
    assert!(
        !Path::new(&socket).exists(),
        "the daemon removed its socket"
    );
}

#[test]
fn a_corrupted_segment_exits_2_and_says_what() {
    let name = format!("/ipcp-inspect-bad-{}", std::process::id());
    let len = Spsc::<u64>::required_size(8).expect("size");
    let segment = CreateOptions::new()
        .unlink_on_drop(true)
        .create(&name, len)
        .expect("create");
    Spsc::<u64>::create(segment.region().expect("region"), 8).expect("ring");
    let object = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/dev/shm{name}"))
        .expect("open the object to corrupt it");

    let healthy = inspect(&[&name]);
    assert_eq!(healthy.status.code(), Some(0), "{healthy:?}");

    // `head` (byte 128) counting 99 elements in 8 slots.
    object
        .write_all_at(&99_u32.to_ne_bytes(), 128)
        .expect("write");
    let bad = inspect(&[&name]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    let text = stdout(&bad);
    assert_eq!(
        row(&text, "status"),
        ["corrupted: counters claim more than the capacity"]
    );
    assert_eq!(row(&text, "head"), ["99"], "the figures are still shown");
    let json = stdout(&inspect(&["--json", &name]));
    assert!(json.starts_with(r#"{"healthy":false,"#), "{json}");

    // A scribbled magic.
    object
        .write_all_at(&0xdead_beef_u32.to_ne_bytes(), 0)
        .expect("write");
    let bad = inspect(&[&name]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stdout(&bad).contains("magic 0xdeadbeef"), "{bad:?}");

    // A missing one is an error naming it.
    let missing = inspect(&[&format!("{name}-missing")]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains(&format!("{name}-missing")));

    drop(segment);
    assert!(
        !shm_entries()
            .iter()
            .any(|entry| entry.starts_with(&name[1..])),
        "nothing left in /dev/shm"
    );
    let _ = std::io::stdout().flush();
}

#[test]
fn an_abstract_socket_of_a_daemon_without_sessions_lists_no_region() {
    let socket = format!("ipcp-inspect-abstract-{}", std::process::id());
    let mut daemon = Proc::run(&examples().join("daemon"), &["serve", &socket]);
    daemon.expect(&["listening"]);
    let json = inspect(&["--json", "--socket", &format!("@{socket}")]);
    assert_eq!(json.status.code(), Some(0), "{json:?}");
    assert_eq!(stdout(&json), "{\"healthy\":true,\"regions\":[]}\n");
    drop(daemon.stdin.take());
    assert_eq!(daemon.finish().code(), Some(0));
    // Once it is gone, nobody holds the name.
    let gone = inspect(&["--socket", &format!("@{socket}")]);
    assert_eq!(gone.status.code(), Some(1), "{gone:?}");
}

#[test]
fn a_laid_out_segment_shows_each_part_and_a_bad_entry_exits_2() {
    use ipc_primitives::Kind;
    use ipc_primitives::broadcast::Broadcast;
    use ipc_primitives::lanes::Lanes;
    use ipc_primitives::parts::Plan;
    use ipc_primitives::seqlock::SeqLock;

    let name = format!("/ipcp-inspect-plan-{}", std::process::id());
    let mut plan = Plan::<3>::new();
    plan.add(
        Kind::SeqLock,
        SeqLock::<[u64; 2]>::required_size().expect("size"),
    )
    .expect("plan");
    plan.add(
        Kind::Broadcast,
        Broadcast::<u64>::required_size(8).expect("size"),
    )
    .expect("plan");
    plan.add(Kind::Lanes, Lanes::required_size(2, 16).expect("size"))
        .expect("plan");
    let segment = CreateOptions::new()
        .unlink_on_drop(true)
        .create(&name, plan.size().expect("size"))
        .expect("create");
    let mut parts = plan
        .create(segment.region().expect("region"))
        .expect("parts");
    let mut quote = SeqLock::<[u64; 2]>::create(parts.next().expect("part"))
        .expect("seqlock")
        .into_writer();
    quote.write(&[1, 2]);
    let mut ticks = Broadcast::<u64>::create(parts.next().expect("part"), 8)
        .expect("broadcast")
        .into_writer();
    for n in 0..5 {
        ticks.publish(&n);
    }
    let lanes = Lanes::create(parts.next().expect("part"), 2, 16).expect("lanes");
    let mut lane = lanes.claim_lane(1).expect("a free lane");
    lane.push(b"hi").expect("room");

    let json = inspect(&["--json", &name]);
    assert_eq!(json.status.code(), Some(0), "{json:?}");
    let doc = stdout(&json);
    for field in [
        r#""kind":"layout directory""#,
        r#""parts":3,"part":[{"index":0,"offset_lines":2,"#,
        r#""kind":"seqlock""#,
        r#""sequence":2,"writes":1,"writing":false"#,
        r#""kind":"broadcast ring""#,
        r#""published":5"#,
        r#""kind":"fan-in lanes""#,
        r#""lanes":2,"lane_words":16,"lane":[{"state":"Free { generation: 0 }""#,
        r#"{"state":"Claimed { generation: 1, locked: false }","fill_words":"2 / 16""#,
    ] {
        assert!(doc.contains(field), "{field} in {doc}");
    }
    let table = stdout(&inspect(&[&name]));
    assert_eq!(row(&table, "status"), ["ok", "ok", "ok", "ok"], "{table}");

    // Part 1's directory entry (at 128 + 16) made to list another kind.
    let object = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/dev/shm{name}"))
        .expect("open the object to corrupt it");
    object
        .write_all_at(&(Kind::Spsc as u32).to_ne_bytes(), 128 + 16)
        .expect("write");
    let bad = inspect(&[&name]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    let table = stdout(&bad);
    assert_eq!(
        row(&table, "status"),
        [
            "ok",
            "ok",
            "corrupted: part 1: holds another kind than the directory lists",
            "ok"
        ],
        "{table}"
    );
    drop(lane);
    drop(segment);
    assert!(
        !shm_entries()
            .iter()
            .any(|entry| entry.starts_with(&name[1..])),
        "nothing left in /dev/shm"
    );
}
