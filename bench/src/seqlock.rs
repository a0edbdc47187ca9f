//! `seqlock`: what a seqlock reader can expect under a busy writer.
//!
//! A writer thread on core 0 overwrites the value as fast as it can; readers
//! read for a fixed time and count the reads that return a value. Every value
//! is checked whole (all its words equal). Three ways to read:
//! - `try_read`: a bounded spin (`Spins::DEFAULT`), for contexts that cannot
//!   wait;
//! - `read`: the default time budget (`Budget::default()`, one second: spin,
//!   then yield);
//! - with 2 readers on core 1, the readers also preempt each other, as readers
//!   time-sharing a core do.
//!
//! Values of 64 bytes and 1 KiB; 1 and 2 readers. The table gives the share
//! of reads that returned a value and the rate of those that did.

use std::{
    error::Error,
    io::{self, Write},
    sync::{
        Barrier,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use ipc_primitives::seqlock::{ReadError, Reader, StaticSeqLock};
use serde_json::json;

use crate::{
    Options, pin,
    report::{self, Metric},
    stats::Summary,
};

const WRITER_CORE: usize = 0;
const READER_CORE: usize = 1;
/// How long the readers read in one run.
const RUN: Duration = Duration::from_millis(300);
const ROUNDS: usize = 11;
const QUICK_ROUNDS: usize = 3;

/// How a reader reads.
#[derive(Debug, Clone, Copy)]
enum Method {
    TryRead,
    Read,
}

/// One configuration: value size, readers, method.
struct Case {
    key: &'static str,
    label: &'static str,
    words: usize,
    readers: usize,
    method: Method,
}

const CASES: [Case; 8] = [
    case(
        "seqlock_try_read_64_r1",
        "try_read, 64 B, 1 reader",
        8,
        1,
        Method::TryRead,
    ),
    case(
        "seqlock_read_64_r1",
        "read, 64 B, 1 reader",
        8,
        1,
        Method::Read,
    ),
    case(
        "seqlock_try_read_64_r2",
        "try_read, 64 B, 2 readers",
        8,
        2,
        Method::TryRead,
    ),
    case(
        "seqlock_read_64_r2",
        "read, 64 B, 2 readers",
        8,
        2,
        Method::Read,
    ),
    case(
        "seqlock_try_read_1k_r1",
        "try_read, 1 KiB, 1 reader",
        128,
        1,
        Method::TryRead,
    ),
    case(
        "seqlock_read_1k_r1",
        "read, 1 KiB, 1 reader",
        128,
        1,
        Method::Read,
    ),
    case(
        "seqlock_try_read_1k_r2",
        "try_read, 1 KiB, 2 readers",
        128,
        2,
        Method::TryRead,
    ),
    case(
        "seqlock_read_1k_r2",
        "read, 1 KiB, 2 readers",
        128,
        2,
        Method::Read,
    ),
];

const fn case(
    key: &'static str,
    label: &'static str,
    words: usize,
    readers: usize,
    method: Method,
) -> Case {
    Case {
        key,
        label,
        words,
        readers,
        method,
    }
}

/// What the readers of one run saw.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    ok: u64,
    failed: u64,
}

impl Counts {
    fn share(self) -> f64 {
        self.ok as f64 / (self.ok + self.failed).max(1) as f64
    }
}

pub fn run(opts: &Options) -> Result<(), Box<dyn Error>> {
    let rounds = if opts.quick { QUICK_ROUNDS } else { ROUNDS };
    println!(
        "seqlock: a writer on core {WRITER_CORE} writing as fast as it can, readers on core \
         {READER_CORE} reading for {} ms per run, {rounds} rounds",
        RUN.as_millis()
    );
    let mut shares = vec![Vec::with_capacity(rounds); CASES.len()];
    let mut rates = vec![Vec::with_capacity(rounds); CASES.len()];
    for round in 1..=rounds {
        print!("round {round:>2}/{rounds} (share of reads that returned a value):");
        for (index, case) in CASES.iter().enumerate() {
            let counts = match case.words {
                8 => measure::<8>(case),
                _ => measure::<128>(case),
            };
            print!("  {:.4}", counts.share());
            io::stdout().flush()?;
            shares[index].push(counts.share());
            rates[index].push(counts.ok as f64 / RUN.as_secs_f64());
        }
        println!();
    }
    let metrics: Vec<Metric> = CASES
        .iter()
        .zip(&shares)
        .zip(&rates)
        .map(|((case, shares), rates)| {
            let mut metric = Metric::new(case.key, case.label, "share", Summary::of(shares));
            metric
                .extra
                .insert("reads_per_s".into(), json!(Summary::of(rates).median));
            metric
        })
        .collect();
    println!();
    println!(
        "{:<28}  {:>12}  {:>12}  {:>14}",
        "", "share (med)", "share (min)", "M reads/s (med)"
    );
    for metric in &metrics {
        println!(
            "{:<28}  {:>12.6}  {:>12.6}  {:>14.2}",
            metric.label,
            metric.summary.median,
            metric.summary.min,
            metric.extra_f64("reads_per_s").unwrap_or(0.0) / 1e6
        );
    }
    if let Some(path) = &opts.json {
        let meta = json!({
            "date": report::utc_now(),
            "command": "seqlock",
            "rounds": rounds,
            "quick": opts.quick,
            "run_ms": RUN.as_millis(),
            "cores": [WRITER_CORE, READER_CORE],
        });
        report::write_json(path, &metrics, meta)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// One run of `case` with values of `N` words.
fn measure<const N: usize>(case: &Case) -> Counts {
    let mut lock = Box::new(StaticSeqLock::<[u64; N]>::new());
    let (mut writer, reader) = lock.split();
    let stop = AtomicBool::new(false);
    let start = Barrier::new(case.readers + 1);
    thread::scope(|s| {
        let writing = s.spawn(|| {
            pin::to_core(WRITER_CORE);
            start.wait();
            let mut n = 0_u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                writer.write(&[n; N]);
            }
        });
        let readers: Vec<_> = (0..case.readers)
            .map(|_| {
                let start = &start;
                s.spawn(move || {
                    pin::to_core(READER_CORE);
                    start.wait();
                    read_for(reader, case.method)
                })
            })
            .collect();
        let counts = readers
            .into_iter()
            .map(|r| r.join().expect("reader panicked"))
            .fold(Counts::default(), |all, one| Counts {
                ok: all.ok + one.ok,
                failed: all.failed + one.failed,
            });
        stop.store(true, Ordering::Relaxed);
        writing.join().expect("writer panicked");
        counts
    })
}

/// Reads for [`RUN`], checking each value is whole.
fn read_for<const N: usize>(reader: Reader<'_, [u64; N]>, method: Method) -> Counts {
    let mut counts = Counts::default();
    let started = Instant::now();
    while started.elapsed() < RUN {
        let read = match method {
            Method::TryRead => reader.try_read(),
            Method::Read => reader.read(),
        };
        match read {
            Ok(value) => {
                assert!(value.iter().all(|&word| word == value[0]), "torn value");
                counts.ok += 1;
            }
            Err(ReadError::Contended | ReadError::WriterStalled) => counts.failed += 1,
            Err(other) => panic!("a live writer reported as {other}"),
        }
    }
    counts
}
