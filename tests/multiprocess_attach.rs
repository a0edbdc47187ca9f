//! Multi-process tests of attaching to what another process created: the
//! exact `AttachError` a child gets for the wrong element type, kind, ABI
//! version or a segment too small for its header, and `WrongRing` through
//! the handshake. How children run, and the accounting around each test:
//! `multiprocess/harness.rs`.
#![cfg(all(feature = "linux", target_os = "linux", not(loom), not(miri)))]

#[path = "multiprocess/harness.rs"]
mod harness;
#[path = "multiprocess/message.rs"]
mod message;
#[path = "multiprocess/parent.rs"]
mod parent;
#[path = "multiprocess/roles.rs"]
mod roles;

use core::time::Duration;

use ipc_primitives::linux::handshake::{HandshakeError, Policy, Server};
use ipc_primitives::linux::shm::{CreateOptions, Segment};
use ipc_primitives::seqlock::{ReadError, SeqLock};
use ipc_primitives::spsc::Spsc;
use ipc_primitives::{ABI_VERSION, AttachError, ElementLayout, FitError, Kind};
use rustix::fs::ftruncate;

use harness::{Proc, ShmName, abstract_addr, accounted, wait_readable};
use message::Msg;
use parent::named_ring;

/// The entry point of every child: see `multiprocess/harness.rs`.
#[test]
fn child() {
    harness::run_child(roles::run);
}

/// Byte offset of the ABI version in every region header (see the `# Layout`
/// table of `ipc_primitives::layout`'s header): a native-endian `u32`.
const VERSION_OFFSET: u64 = 4;

/// What a child's attach outcome prints as, for a case that succeeds.
fn attached() -> String {
    format!("{:?}", Ok::<(), AttachError>(()))
}

/// What a child's attach outcome prints as, for a case that fails.
fn refused(err: AttachError) -> String {
    format!("{:?}", Err::<(), _>(err))
}

/// A child attaches to each segment as its case says (`ring-as-<type>`,
/// `seqlock-read`, `seqlock-as-u64`: see `roles::attach_report`) and reports
/// the outcome, which must be the expected one.
fn expect_attach(cases: &[(&str, &ShmName, String)]) {
    let spec = cases
        .iter()
        .map(|(case, name, _)| format!("{case}:{}", name.0))
        .collect::<Vec<_>>()
        .join(";");
    let mut child = Proc::spawn(
        "attach-report",
        &[("IPCP_CASES", spec)],
        Duration::from_secs(30),
    );
    let results = child.wait_success();
    assert_eq!(
        results.len(),
        cases.len(),
        "one result per case: {results:?}"
    );
    for (index, ((case, name, expected), got)) in cases.iter().zip(&results).enumerate() {
        assert_eq!(
            got,
            &format!("{index} {expected}"),
            "case {index}: {case} on {}",
            name.0
        );
    }
}

/// A ring of 64 messages attached as its own type, as a type of another
/// size, of the same size and stride (which attaches: only a type tag could
/// tell them apart), of another size but the same stride, and as a seqlock.
#[test]
fn attach_to_a_ring_checks_the_element_layout_and_kind() {
    accounted(|| {
        let name = ShmName::new("ring");
        let _ring = named_ring(&name, 64);
        let msg = ElementLayout::of::<Msg>();
        expect_attach(&[
            ("ring-as-Msg", &name, attached()),
            (
                "ring-as-u64",
                &name,
                refused(AttachError::WrongElement {
                    expected: ElementLayout::of::<u64>(),
                    found: msg,
                }),
            ),
            ("ring-as-u32x16", &name, attached()),
            (
                "ring-as-u32x15",
                &name,
                refused(AttachError::WrongElement {
                    expected: ElementLayout {
                        size: 60,
                        stride: 64,
                    },
                    found: msg,
                }),
            ),
            (
                "ring-as-seqlock",
                &name,
                refused(AttachError::WrongKind {
                    expected: Kind::SeqLock,
                    found: Kind::Spsc as u32,
                }),
            ),
        ]);
    });
}

/// A seqlock holding `[1, 2, 3, 4]`: a child reads it back, and is refused
/// as a seqlock of another type.
#[test]
fn attach_to_a_seqlock_reads_its_value_and_checks_its_type() {
    accounted(|| {
        let name = ShmName::new("seqlock");
        let seqlock = CreateOptions::new()
            .unlink_on_drop(true)
            .create(&name.0, SeqLock::<[u64; 4]>::required_size().unwrap())
            .expect("create");
        SeqLock::<[u64; 4]>::create(seqlock.region().expect("the segment's region"))
            .expect("create the seqlock")
            .into_writer()
            .write(&[1, 2, 3, 4]);
        expect_attach(&[
            (
                "seqlock-read",
                &name,
                format!(
                    "{:?}",
                    Ok::<Result<[u64; 4], ReadError>, AttachError>(Ok([1, 2, 3, 4]))
                ),
            ),
            (
                "seqlock-as-u64",
                &name,
                refused(AttachError::WrongElement {
                    expected: ElementLayout::of::<u64>(),
                    found: ElementLayout::of::<[u64; 4]>(),
                }),
            ),
        ]);
    });
}

/// A ring whose header claims another ABI version, rewritten through the fd
/// as another process could.
#[test]
fn attach_to_a_header_of_another_abi_version_is_refused() {
    accounted(|| {
        let name = ShmName::new("version");
        let ring = named_ring(&name, 64);
        let mut found = [0; 4];
        rustix::io::pread(ring.keeper(), &mut found, VERSION_OFFSET).expect("pread");
        assert_eq!(
            u32::from_ne_bytes(found),
            ABI_VERSION,
            "the header layout moved: update VERSION_OFFSET"
        );
        let bumped = ABI_VERSION + 1;
        rustix::io::pwrite(ring.keeper(), &bumped.to_ne_bytes(), VERSION_OFFSET).expect("pwrite");
        expect_attach(&[(
            "ring-as-Msg",
            &name,
            refused(AttachError::WrongVersion {
                expected: ABI_VERSION,
                found: bumped,
            }),
        )]);
    });
}

/// A ring of 1024 messages whose segment is then cut to one page. The
/// creator's mapping is gone before the cut and the child maps only what is
/// left, so nobody touches a page past the end (no `SIGBUS`): a sound way to
/// give attach a header that asks for more than the mapping holds.
#[test]
fn attach_to_a_segment_cut_below_its_header_is_refused() {
    accounted(|| {
        let name = ShmName::new("small");
        let needed = Spsc::<Msg>::required_size(1024).expect("size");
        {
            let segment = Segment::create(&name.0, needed).expect("create");
            Spsc::<Msg>::create(segment.region().expect("the segment's region"), 1024)
                .expect("create the ring");
        }
        let fd = rustix::shm::open(
            name.0.as_str(),
            rustix::shm::OFlags::RDWR,
            rustix::fs::Mode::empty(),
        )
        .expect("shm_open");
        ftruncate(&fd, 4096).expect("ftruncate");
        drop(fd);
        expect_attach(&[(
            "ring-as-Msg",
            &name,
            refused(AttachError::Fit(FitError::TooSmall {
                needed,
                actual: 4096,
            })),
        )]);
    });
}

/// Through the handshake: a client of another element type is told what the
/// server offers.
#[test]
fn a_client_of_another_type_is_told_what_the_server_offers() {
    accounted(|| {
        let (addr, addr_name) = abstract_addr("wrong-type");
        let mut server = Server::<Msg>::bind(&addr, 16, Policy::SameUser).expect("bind");
        let mut child = Proc::spawn(
            "connect-report",
            &[("IPCP_ADDR", addr_name), ("IPCP_TYPE", "u64".to_owned())],
            Duration::from_secs(30),
        );
        wait_readable(&server, &mut [&mut child], "the client to connect");
        let session = server
            .accept()
            .expect("the listener works")
            .expect("the client is served");
        let results = child.wait_success();
        let expected = Err::<(), _>(HandshakeError::WrongRing {
            kind: Kind::Spsc,
            elem: ElementLayout::of::<Msg>(),
        });
        assert_eq!(results, [format!("connect {expected:?}")]);
        assert!(session.peer_closed().expect("poll"), "the client is gone");
    });
}
