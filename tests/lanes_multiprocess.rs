//! Multi-process test of fan-in lanes: four producer processes, each on a
//! lane it claimed with a lock (`claim_locked`), into one consumer (this
//! process) through a named POSIX shm segment and futex wake-ups. Children
//! are this test binary run again (see `tests/multiprocess.rs`).
//!
//! - A *flood* producer keeps its lane full for the whole test.
//! - A *victim* producer sends until the consumer has 2,500 of its records,
//!   then is `SIGKILL`ed mid-stream: `reclaim_dead` reclaims exactly its
//!   lane (its lock died with it; the live producers' locks are held), every
//!   record it committed arrives, in order and intact, and its lane ends
//!   free.
//! - Two *steady* producers send 20,000 records each (random lengths, each
//!   carrying its producer, sequence number and a checksum) and release
//!   their lanes: every record arrives, in order, intact, many while the
//!   flood lane held records, and (the fairness rule) a steady lane with
//!   records waiting never sees more than `(lanes - 1) * budget` records of
//!   other lanes between two of its own: a full lane does not starve the
//!   others. The flood lane is served too.
//!
//! At the end the flood producer is killed and reclaimed, every lane is free,
//! and no fd or `/dev/shm` name is left.
#![cfg(all(feature = "linux", target_os = "linux", not(loom), not(miri)))]

#[path = "multiprocess/harness.rs"]
mod harness;

use core::time::Duration;

use ipc_primitives::bytes::{ReserveError, max_record};
use ipc_primitives::lanes::{BlockingError, Delivery, LaneState, Lanes};
use ipc_primitives::linux::shm::{CreateOptions, Segment};
use ipc_primitives::linux::wake::{PushNotifyError, SpinThenBlock, WaitError, Wakeup};

use harness::{Accounting, Proc, RESULT, ShmName, env, env_parse};

/// The entry point of every child.
#[test]
fn child() {
    harness::run_child(|role| match role {
        "steady" => producer(Some(env_parse("IPCP_COUNT")), true),
        "flood" => producer(None, false),
        "victim" => producer(None, true),
        other => panic!("unknown child role {other:?}"),
    });
}

/// Lanes in the segment.
const LANES: usize = 4;
/// Words per lane: 4 KiB, records up to 2,040 bytes.
const WORDS: u32 = 512;
/// Records each steady producer sends.
const STEADY: u64 = 20_000;
/// Records of the victim the consumer takes before killing it.
const VICTIM_BEFORE_KILL: u64 = 2_500;
/// How long a blocking pop waits before the parent checks on the children.
const POP_TIMEOUT: Duration = Duration::from_secs(5);

/// FNV-1a over `bytes`.
fn checksum(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash, &byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// The flood producer's id.
const FLOOD: u8 = 0;

/// Record `seq` of producer `id`: its id, its sequence number, bytes
/// derived from both, a checksum of the rest; 13 bytes to the largest (to
/// 64 for the flood).
fn record(id: u8, seq: u64) -> Vec<u8> {
    let mut state = (seq ^ u64::from(id) << 56).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // The flood's records are short, so that it refills its lane faster
    // than the consumer checks them.
    let max = if id == FLOOD { 64 } else { max_record(WORDS) };
    let len = 13 + next() as usize % (max - 12);
    let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
    bytes[0] = id;
    bytes[1..9].copy_from_slice(&seq.to_le_bytes());
    let sum = checksum(&bytes[..len - 4]);
    bytes[len - 4..].copy_from_slice(&sum.to_le_bytes());
    bytes
}

/// A child producer: claims a lane (reporting which), then sends `count`
/// records (`None`: until killed), with `push_notify` if `notify`, and
/// releases the lane.
fn producer(count: Option<u64>, notify: bool) {
    let segment = Segment::open(&env("IPCP_SHM")).expect("open the parent's segment");
    let id: u8 = env_parse("IPCP_ID");
    let lanes = Lanes::attach(segment.region().expect("region")).expect("attach");
    let mut lane = lanes
        .claim_locked(&segment)
        .expect("claim_locked")
        .expect("a free lane");
    println!("{RESULT}lane {}", lane.lane());
    let wakeup = Wakeup::Futex;
    for seq in 0..count.unwrap_or(u64::MAX) {
        let record = record(id, seq);
        let mut attempt = 0_u32;
        loop {
            let full = if notify {
                match lane.push_notify(&record, &wakeup) {
                    Ok(()) => false,
                    Err(PushNotifyError::Push(ReserveError::Full)) => true,
                    Err(err) => panic!("push of record {seq}: {err}"),
                }
            } else {
                match lane.push(&record) {
                    Ok(()) => false,
                    Err(ReserveError::Full) => true,
                    Err(err) => panic!("push of record {seq}: {err}"),
                }
            };
            if !full {
                break;
            }
            attempt += 1;
            if attempt < 64 {
                core::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        if notify && seq % 1_000 == 999 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    lane.release(&wakeup).expect("release");
}

/// What the consumer tracks of one producer.
struct Stream {
    id: u8,
    next: u64,
}

impl Stream {
    /// Checks the next record of this producer.
    fn accept(&mut self, bytes: &[u8]) {
        let expected = record(self.id, self.next);
        assert_eq!(
            bytes.len(),
            expected.len(),
            "length of record {} of producer {}",
            self.next,
            self.id
        );
        let sum = checksum(&bytes[..bytes.len() - 4]).to_le_bytes();
        assert_eq!(bytes[bytes.len() - 4..], sum, "checksum");
        assert!(
            bytes == expected,
            "record {} of producer {}",
            self.next,
            self.id
        );
        self.next += 1;
    }
}

/// Spawns producer `id` playing `role` and returns it with its lane.
fn spawn(role: &str, id: u8, name: &ShmName) -> (Proc, usize) {
    let mut child = Proc::spawn(
        role,
        &[
            ("IPCP_SHM", name.0.clone()),
            ("IPCP_ID", id.to_string()),
            ("IPCP_COUNT", STEADY.to_string()),
        ],
        Duration::from_secs(240),
    );
    let lane = child
        .expect_line(&format!("{RESULT}lane "))
        .parse()
        .expect("a lane");
    (child, lane)
}

#[test]
fn four_producers_one_killed_one_kept_full() {
    let accounting = Accounting::begin();
    {
        let name = ShmName::new("lanes");
        let segment = CreateOptions::new()
            .unlink_on_drop(true)
            .create(&name.0, Lanes::required_size(LANES, WORDS).expect("size"))
            .expect("create the named segment");
        let lanes = Lanes::create(segment.region().expect("region"), LANES, WORDS).expect("create");
        let mut rx = lanes.into_consumer();
        let (mut flood, flood_lane) = spawn("flood", FLOOD, &name);
        let (mut victim, victim_lane) = spawn("victim", 1, &name);
        let (mut steady_a, lane_a) = spawn("steady", 2, &name);
        let (mut steady_b, lane_b) = spawn("steady", 3, &name);
        let mut lanes_seen = [flood_lane, victim_lane, lane_a, lane_b];
        lanes_seen.sort_unstable();
        assert_eq!(lanes_seen, [0, 1, 2, 3], "four lanes, one each");
        let mut streams = [0, 1, 2, 3].map(|id| Stream { id, next: 0 });
        let id_of = |lane: usize| {
            [flood_lane, victim_lane, lane_a, lane_b]
                .iter()
                .position(|&l| l == lane)
                .expect("a producer's lane")
        };
        let wakeup = Wakeup::Futex;
        let mut buf = vec![0; rx.max_record()];
        let (mut steady, mut steady_beside_flood) = (0_u64, 0_u64);
        // Per steady lane: records delivered from other lanes since it was
        // last served, while it had records waiting all along.
        let mut passed_over = [0_u32; 2];
        let mut most_passed_over = 0;
        let mut killed = false;
        while streams[2].next < STEADY || streams[3].next < STEADY || !killed {
            let flood_full = rx.used_words(flood_lane) > 0;
            let waiting = [lane_a, lane_b].map(|lane| rx.used_words(lane) > 0);
            match rx.pop_blocking(
                &mut buf,
                &wakeup,
                SpinThenBlock::default(),
                Some(POP_TIMEOUT),
            ) {
                Ok(Delivery { lane, len }) => {
                    let id = id_of(lane);
                    streams[id].accept(&buf[..len]);
                    if id >= 2 {
                        steady += 1;
                        steady_beside_flood += u64::from(flood_full);
                    }
                    for (passed, (steady_lane, waited)) in passed_over
                        .iter_mut()
                        .zip([lane_a, lane_b].into_iter().zip(waiting))
                    {
                        *passed = if lane == steady_lane || !waited {
                            0
                        } else {
                            *passed + 1
                        };
                        most_passed_over = most_passed_over.max(*passed);
                    }
                }
                Err(BlockingError::Sleep(WaitError::TimedOut)) => {
                    for child in [&mut flood, &mut steady_a, &mut steady_b] {
                        child.check_alive("records");
                    }
                }
                Err(err) => panic!("pop: {err}"),
            }
            if !killed && streams[1].next >= VICTIM_BEFORE_KILL {
                victim.kill();
                killed = true;
                assert_eq!(
                    rx.reclaim_dead(&segment),
                    Ok(1),
                    "exactly the victim's lane"
                );
                assert!(matches!(
                    rx.state(victim_lane),
                    Some(LaneState::Closing { .. } | LaneState::Free { .. })
                ));
            }
        }
        steady_a.wait_success();
        steady_b.wait_success();
        // The victim's lane was drained and freed, or is on its way.
        flood.kill();
        assert_eq!(rx.reclaim_dead(&segment), Ok(1), "the flood's lane");
        loop {
            match rx.pop_blocking(
                &mut buf,
                &wakeup,
                SpinThenBlock::new(0),
                Some(Duration::from_millis(300)),
            ) {
                Ok(Delivery { lane, len }) => streams[id_of(lane)].accept(&buf[..len]),
                Err(BlockingError::Sleep(WaitError::TimedOut)) => break,
                Err(err) => panic!("drain: {err}"),
            }
        }
        for lane in 0..LANES {
            assert_eq!(
                rx.state(lane),
                Some(LaneState::Free { generation: 1 }),
                "lane {lane} ends free"
            );
        }
        eprintln!(
            "lanes: flood {}, victim {} (killed), steady {} + {}; {steady_beside_flood} of {steady} \
             steady records while the flood lane held records; a waiting steady lane saw at most \
             {most_passed_over} records of other lanes between two of its own",
            streams[0].next, streams[1].next, streams[2].next, streams[3].next
        );
        assert_eq!((streams[2].next, streams[3].next), (STEADY, STEADY));
        assert!(streams[1].next >= VICTIM_BEFORE_KILL);
        assert!(streams[0].next > 0, "the flood lane was served");
        assert!(
            steady_beside_flood > 0,
            "the steady producers got through while the flood lane held records"
        );
        // The rule: a lane with records waiting is served again after at most
        // `lanes - 1` turns of the others, each of at most `budget` records.
        let budget = rx.budget();
        assert!(
            most_passed_over <= (LANES as u32 - 1) * budget,
            "a waiting lane was passed over {most_passed_over} times"
        );
    }
    accounting.check();
}
