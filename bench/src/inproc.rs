//! `inproc`: SPSC throughput between two threads of one process.
//!
//! This crate's ring against rtrb, crossbeam-queue's `ArrayQueue` and
//! heapless's `spsc::Queue`. All four carry the same 64-byte message through
//! the same producer and consumer loops ([`produce`], [`consume`]): the
//! producer writes every word of each message, the consumer reads and checks
//! every word. The producer runs on core 0, the consumer on core 1, and the
//! implementations take turns (A B C D, A B C D, ...) so that the machine's
//! changes of speed hit them all alike.

use std::{
    error::Error,
    io::{self, Write},
    sync::Barrier,
    thread,
    time::{Duration, Instant},
};

use ipc_primitives::{Line, Region, spsc::Spsc};
use serde_json::json;

use crate::{
    Options,
    loops::{Msg, Words, consume, produce, spsc_pop, spsc_push},
    pin,
    report::{self, Metric},
    stats::Summary,
};

/// Elements each ring holds.
pub const CAPACITY: usize = 1024;
/// 64-byte messages moved per run: about 0.2-0.5 s at typical rates.
pub const MESSAGES: u64 = 10_000_000;

/// Messages of `W` words moved per run: [`MESSAGES`] of 64 bytes, four
/// times as many smaller ones, which move about that much faster (a run
/// takes about as long).
pub const fn messages<const W: usize>() -> u64 {
    if W < 8 { 4 * MESSAGES } else { MESSAGES }
}
const PRODUCER_CORE: usize = 0;
const CONSUMER_CORE: usize = 1;
const ROUNDS: usize = 11;
const QUICK_ROUNDS: usize = 3;

/// Keeps a producer or consumer handle on a 128-byte block of its own, as if
/// it lived in its own thread. The handles are locals of the main thread, and
/// most write a field on every push or pop; unpadded, two of them could share a
/// cache line and the benchmark would measure that line bouncing between cores.
#[repr(C, align(128))]
struct Own<T>(T);

/// A contender: moves `MESSAGES` messages and returns the consumer's time.
struct Contender {
    label: &'static str,
    key: &'static str,
    run: fn() -> Result<Duration, Box<dyn Error>>,
}

const CONTENDERS: [Contender; 4] = [
    Contender {
        label: "spsc (this crate)",
        key: "inproc_spsc_tput",
        run: ours::<8>,
    },
    Contender {
        label: "rtrb",
        key: "inproc_rtrb_tput",
        run: rtrb::<8>,
    },
    Contender {
        label: "crossbeam ArrayQueue",
        key: "inproc_crossbeam_tput",
        run: crossbeam,
    },
    Contender {
        label: "heapless spsc",
        key: "inproc_heapless_tput",
        run: heapless,
    },
];

/// Runs the interleaved rounds, prints the table and the spsc/rtrb ratio, and
/// writes the JSON file if asked.
pub fn run(opts: &Options) -> Result<(), Box<dyn Error>> {
    let rounds = if opts.quick { QUICK_ROUNDS } else { ROUNDS };
    println!(
        "inproc: {}-byte messages, capacity {CAPACITY}, {MESSAGES} messages per run, \
         {rounds} rounds, producer on core {PRODUCER_CORE}, consumer on core {CONSUMER_CORE}",
        size_of::<Msg>()
    );
    let mut samples = vec![Vec::with_capacity(rounds); CONTENDERS.len()];
    for round in 1..=rounds {
        print!("round {round:>2}/{rounds} (M msg/s):");
        for (contender, runs) in CONTENDERS.iter().zip(&mut samples) {
            let rate = MESSAGES as f64 / (contender.run)()?.as_secs_f64();
            print!("  {} {:.1}", contender.label, rate / 1e6);
            io::stdout().flush()?;
            runs.push(rate);
        }
        println!();
    }

    let metrics: Vec<Metric> = CONTENDERS
        .iter()
        .zip(&samples)
        .map(|(contender, runs)| {
            Metric::new(contender.key, contender.label, "msg/s", Summary::of(runs))
        })
        .collect();
    report::print_table(&metrics, 1e-6, "M msg/s");
    let ratio = metrics[0].summary.median / metrics[1].summary.median;
    let verdict = if ratio >= 1.0 { "met" } else { "NOT met" };
    println!("\nspsc/rtrb median ratio: {ratio:.3}x (target >= 1.0x: {verdict})");

    if let Some(path) = &opts.json {
        let meta = json!({
            "date": report::utc_now(),
            "command": "inproc",
            "rounds": rounds,
            "quick": opts.quick,
            "messages_per_run": MESSAGES,
            "capacity": CAPACITY,
            "message_bytes": size_of::<Msg>(),
            "cores": [PRODUCER_CORE, CONSUMER_CORE],
            "spsc_over_rtrb": ratio,
        });
        report::write_json(path, &metrics, meta)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// This crate's ring of `W`-word messages, in a heap region, moving
/// [`messages::<W>()`](messages); `xproc` runs it too.
pub fn ours<const W: usize>() -> Result<Duration, Box<dyn Error>> {
    let size = Spsc::<Words<W>>::required_size(CAPACITY as u32).ok_or("ring size overflows")?;
    let mut mem = vec![Line::ZERO; Line::count_for(size)];
    let region = Region::new(zerocopy::IntoBytes::as_mut_bytes(&mut mem[..]));
    let (tx, rx) = Spsc::<Words<W>>::create(region, CAPACITY as u32)?.split();
    let (mut tx, mut rx) = (Own(tx), Own(rx));
    Ok(timed(
        "spsc",
        messages::<W>(),
        |msg| spsc_push(&mut tx.0, msg),
        || spsc_pop(&mut rx.0),
    ))
}

/// rtrb's ring of `W`-word messages, moving [`messages::<W>()`](messages);
/// `xproc` runs it too, as its in-process reference.
pub fn rtrb<const W: usize>() -> Result<Duration, Box<dyn Error>> {
    let (tx, rx) = rtrb::RingBuffer::<Words<W>>::new(CAPACITY);
    let (mut tx, mut rx) = (Own(tx), Own(rx));
    Ok(timed(
        "rtrb",
        messages::<W>(),
        |msg| tx.0.push(msg).map_err(|rtrb::PushError::Full(msg)| msg),
        || rx.0.pop().ok(),
    ))
}

fn crossbeam() -> Result<Duration, Box<dyn Error>> {
    let queue = crossbeam_queue::ArrayQueue::<Msg>::new(CAPACITY);
    Ok(timed(
        "crossbeam",
        MESSAGES,
        |msg| queue.push(msg),
        || queue.pop(),
    ))
}

/// heapless's `Queue<T, N>` holds `N - 1` elements, so `N = CAPACITY + 1`
/// gives the same 1024 as the others. heapless recommends a power-of-two `N`
/// because it wraps indices with `% N`, but the handles `split` returns work
/// on a `QueueView` whose length is a runtime value, so the wrap compiles to a
/// `div` instruction whatever `N` is, and 1025 is no slower than 1024.
fn heapless() -> Result<Duration, Box<dyn Error>> {
    let mut queue = Box::new(heapless::spsc::Queue::<Msg, { CAPACITY + 1 }>::new());
    debug_assert_eq!(queue.capacity(), CAPACITY);
    let (tx, rx) = queue.split();
    let (mut tx, mut rx) = (Own(tx), Own(rx));
    Ok(timed(
        "heapless",
        MESSAGES,
        |msg| tx.0.enqueue(msg),
        || rx.0.dequeue(),
    ))
}

/// Runs `produce` and `consume` of `count` messages on two pinned threads,
/// started together, and returns the consumer's time from the start to the
/// last message.
fn timed<const W: usize>(
    name: &str,
    count: u64,
    push: impl FnMut(Words<W>) -> Result<(), Words<W>> + Send,
    pop: impl FnMut() -> Option<Words<W>> + Send,
) -> Duration {
    let start = Barrier::new(2);
    thread::scope(|s| {
        s.spawn(|| {
            pin::to_core(PRODUCER_CORE);
            start.wait();
            produce(count, push);
        });
        let consumer = s.spawn(|| {
            pin::to_core(CONSUMER_CORE);
            start.wait();
            let t0 = Instant::now();
            consume(name, count, pop);
            t0.elapsed()
        });
        consumer.join().expect("consumer thread panicked")
    })
}
