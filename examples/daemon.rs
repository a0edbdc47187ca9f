//! A logging daemon and its client processes, in one command:
//!
//! `cargo run --release --example daemon`
//!
//! The daemon listens on an abstract Unix socket and starts client processes
//! (this binary again, with `client <id> <socket>`). Each client connects, is
//! checked against the daemon's policy (same user, from `SO_PEERCRED`),
//! receives its own ring in a sealed memfd plus an eventfd, and writes log
//! records into the ring: no system call per record while the daemon is
//! awake, one eventfd write when the daemon announced it would sleep.
//!
//! The daemon sleeps in epoll on the listener, every client's eventfd and
//! every client's socket. It drains rings when woken, checks that every
//! client's records arrive complete and in order, and notices when a client
//! exits from the socket hang-up, drains what is left and frees its ring.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::process::{Child, Command};
use std::time::Instant;

use ipc_primitives::linux::handshake::{Policy, Server, Session, connect};
use ipc_primitives::linux::uds::UnixAddr;
use ipc_primitives::linux::wake::PushNotifyError;
use ipc_primitives::slot::Message;
use ipc_primitives::spsc::{PopError, PushError};
use rustix::buffer::spare_capacity;
use rustix::event::epoll;

/// One log record: up to 120 bytes of text, tagged with the client's id.
type Record = Message<120>;

const CLIENTS: u32 = 3;
const RECORDS_PER_CLIENT: u32 = 300_000;
const RING_CAPACITY: u32 = 1024;
const LISTENER: u64 = u64::MAX;

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    match args.as_slice() {
        [_, role, id, name] if role == "client" => run_client(id.parse()?, name),
        _ => run_daemon(),
    }
}

fn record_text(id: u32, n: u32) -> String {
    format!("client {id}: request {n} served in {} us", n % 997)
}

/// A client: connect, then log every record, waking the daemon only if it sleeps.
fn run_client(id: u32, name: &str) -> Result<(), Error> {
    let mut conn = connect::<Record>(&UnixAddr::abstract_name(name)?)?;
    for n in 0..RECORDS_PER_CLIENT {
        let mut record = Record::new(id, record_text(id, n).as_bytes())?;
        loop {
            match conn.push_notify(record) {
                Ok(()) => break,
                Err(PushNotifyError::Push(PushError::Full(back))) => {
                    record = back;
                    std::thread::yield_now();
                }
                Err(err) => return Err(err.to_string().into()),
            }
        }
    }
    Ok(())
}

/// What the daemon knows of one client.
struct Client {
    session: Session<Record>,
    next: u32,
}

impl Client {
    /// Pops everything published, checks it, and announces sleep once empty.
    fn drain(&mut self) -> Result<(), Error> {
        let rx = self.session.consumer_mut();
        loop {
            match rx.try_pop() {
                Ok(record) => {
                    let id = record.tag();
                    let expected = record_text(id, self.next);
                    if record.payload() != expected.as_bytes() {
                        return Err(format!(
                            "client {id}: record {} damaged or out of order",
                            self.next
                        )
                        .into());
                    }
                    self.next += 1;
                }
                Err(PopError::Empty) => match rx.prepare_to_sleep()? {
                    Some(_) => return Ok(()),
                    None => continue,
                },
                Err(PopError::Corrupted) => return Err("a client corrupted its ring".into()),
            }
        }
    }
}

fn run_daemon() -> Result<(), Error> {
    let name = format!("ipc-primitives-daemon-{}", std::process::id());
    let server = Server::<Record>::bind(
        &UnixAddr::abstract_name(&name)?,
        RING_CAPACITY,
        Policy::SameUser,
    )?;
    let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    epoll::add(
        &epoll,
        &server,
        epoll::EventData::new_u64(LISTENER),
        epoll::EventFlags::IN,
    )?;

    let start = Instant::now();
    let mut children: Vec<Child> = (0..CLIENTS)
        .map(|id| {
            Command::new(std::env::current_exe()?)
                .args(["client", &id.to_string(), &name])
                .spawn()
        })
        .collect::<Result<_, _>>()?;

    let mut clients: BTreeMap<u64, Client> = BTreeMap::new();
    let mut finished = Vec::new();
    let mut next_token = 0;
    let mut wakes = 0u64;
    let mut events = Vec::with_capacity(16);
    while finished.len() < CLIENTS as usize {
        events.clear();
        epoll::wait(&epoll, spare_capacity(&mut events), None)?;
        for event in &events {
            let token = event.data.u64();
            if token == LISTENER {
                let mut client = Client {
                    session: server.accept()?,
                    next: 0,
                };
                let wake = client
                    .session
                    .wakeup()
                    .eventfd_ref()
                    .ok_or("sessions use eventfds")?;
                epoll::add(
                    &epoll,
                    wake,
                    epoll::EventData::new_u64(2 * next_token),
                    epoll::EventFlags::IN,
                )?;
                epoll::add(
                    &epoll,
                    client.session.socket(),
                    epoll::EventData::new_u64(2 * next_token + 1),
                    epoll::EventFlags::RDHUP,
                )?;
                client.drain()?;
                clients.insert(next_token, client);
                next_token += 1;
                continue;
            }
            let Some(client) = clients.get_mut(&(token / 2)) else {
                continue;
            };
            if token % 2 == 0 {
                wakes += 1;
                client
                    .session
                    .wakeup()
                    .eventfd_ref()
                    .ok_or("eventfd")?
                    .drain()?;
                client.drain()?;
            } else {
                // Hang-up: drain what is left, then free the session.
                client.drain()?;
                let client = clients.remove(&(token / 2)).ok_or("known client")?;
                epoll::delete(&epoll, client.session.socket())?;
                epoll::delete(
                    &epoll,
                    client
                        .session
                        .wakeup()
                        .eventfd_ref()
                        .ok_or("eventfd")?
                        .as_fd(),
                )?;
                finished.push((client.session.credentials().pid, client.next));
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    for child in &mut children {
        if !child.wait()?.success() {
            return Err("a client failed".into());
        }
    }

    let total: u32 = finished.iter().map(|(_, n)| n).sum();
    for (pid, count) in &finished {
        // No pid when the client is in a pid namespace the daemon cannot see.
        let pid = pid.map_or_else(|| "?".to_owned(), |pid| pid.as_raw_nonzero().to_string());
        println!("client pid {pid:>7}: {count} records, complete and in order");
    }
    println!(
        "daemon: {total} records of 128 bytes from {CLIENTS} processes in {secs:.2} s ({:.1} M records/s), woken {wakes} times",
        f64::from(total) / secs / 1e6
    );
    if finished.iter().any(|&(_, n)| n != RECORDS_PER_CLIENT) {
        return Err("records were lost".into());
    }
    Ok(())
}
