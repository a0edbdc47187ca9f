//! Every scenario, in groups, in the order each round runs them.
//!
//! `--only` takes scenario keys and group names. Within a group, pairs that
//! targets compare are neighbours.

use std::error::Error;

use super::{
    Outcome, broadcast, fanin, ice_tput, line,
    peer::{Follow, Leader},
    push, rtt, tokio, tput, varlen,
};

/// A scenario's leader half: runs once and returns the run's outcome. The
/// key is the scenario's own, for the commands it sends its peers.
pub type Lead = fn(&mut Leader, &'static str) -> Result<Outcome, Box<dyn Error>>;

/// A scenario: its leader's half, and its peers' half if it has one.
pub struct Scenario {
    /// Key in the JSON output and in commands to the peers.
    pub key: &'static str,
    /// Name in the table; `short` in the progress lines.
    pub label: &'static str,
    pub short: &'static str,
    pub unit: &'static str,
    pub lead: Lead,
    pub follow: Option<Follow>,
    /// Peer processes a run uses: 1 with a `follow`, unless it says more.
    pub peers: usize,
}

impl Scenario {
    /// A scenario between the leader and one peer process.
    const fn xproc(
        key: &'static str,
        label: &'static str,
        short: &'static str,
        unit: &'static str,
        lead: Lead,
        follow: Follow,
    ) -> Self {
        Self {
            key,
            label,
            short,
            unit,
            lead,
            follow: Some(follow),
            peers: 1,
        }
    }

    /// The same with `peers` peer processes.
    const fn peers(self, peers: usize) -> Self {
        Self { peers, ..self }
    }

    /// A scenario the leader runs alone (its peer idles).
    const fn local(
        key: &'static str,
        label: &'static str,
        short: &'static str,
        unit: &'static str,
        lead: Lead,
    ) -> Self {
        Self {
            key,
            label,
            short,
            unit,
            lead,
            follow: None,
            peers: 0,
        }
    }
}

/// Scenarios run and selected together.
pub struct Group {
    pub name: &'static str,
    pub scenarios: &'static [Scenario],
}

/// Every group, in the order each round runs them.
pub const GROUPS: &[Group] = &[
    Group {
        name: "latency",
        scenarios: &[
            Scenario::xproc(
                "raw_line_rtt",
                "raw 1-line ping-pong",
                "raw",
                "ns",
                line::raw_line,
                line::follow,
            ),
            Scenario::xproc(
                "spsc_rtt_8",
                "spsc busy-poll rtt, 8 B",
                "spsc8",
                "ns",
                rtt::spsc::<1>,
                rtt::spsc_follow::<1>,
            ),
            Scenario::xproc(
                "spsc_rtt_56",
                "spsc busy-poll rtt, 56 B",
                "spsc56",
                "ns",
                rtt::spsc::<7>,
                rtt::spsc_follow::<7>,
            ),
            Scenario::xproc(
                "raw_line_56_rtt",
                "raw 56-byte line rtt",
                "raw56",
                "ns",
                line::raw_line_56,
                line::line_56_follow,
            ),
            Scenario::xproc(
                "raw_payload_rtt",
                "raw seq + 64-byte payload rtt",
                "rawp",
                "ns",
                line::raw_payload,
                line::payload_follow,
            ),
            Scenario::xproc(
                "spsc_rtt",
                "spsc busy-poll rtt, 64 B",
                "spsc",
                "ns",
                rtt::spsc::<8>,
                rtt::spsc_follow::<8>,
            ),
            Scenario::xproc(
                "broadcast_rtt",
                "broadcast busy-poll rtt, 64 B",
                "bc",
                "ns",
                broadcast::rtt,
                broadcast::rtt_follow,
            ),
            Scenario::xproc(
                "broadcast_rtt_ro",
                "broadcast busy-poll rtt, 64 B, read-only reader mapping",
                "bcro",
                "ns",
                broadcast::rtt,
                broadcast::rtt_follow,
            ),
            Scenario::xproc(
                "raw_record_rtt",
                "raw 64-byte record rtt (header + payload)",
                "rawr",
                "ns",
                line::raw_record,
                line::record_follow,
            ),
            Scenario::xproc(
                "varlen_rtt",
                "record ring busy-poll rtt, 64 B",
                "var",
                "ns",
                varlen::rtt,
                varlen::rtt_follow,
            ),
            Scenario::xproc(
                "iceoryx2_rtt",
                "iceoryx2 busy-poll rtt",
                "ice",
                "ns",
                rtt::iceoryx2,
                rtt::iceoryx2_follow,
            ),
            Scenario::xproc(
                "uds_rtt",
                "unix stream socket rtt",
                "uds",
                "ns",
                rtt::uds,
                rtt::uds_follow,
            ),
        ],
    },
    Group {
        name: "blocking",
        scenarios: &[
            Scenario::xproc(
                "spsc_blocking_spin_rtt",
                "spsc eventfd rtt, default spin",
                "spin",
                "ns",
                rtt::spsc_blocking_spin,
                rtt::blocking_follow,
            ),
            Scenario::xproc(
                "eventfd_rtt",
                "raw blocking eventfd rtt",
                "efd",
                "ns",
                rtt::eventfd,
                rtt::eventfd_follow,
            ),
            Scenario::xproc(
                "spsc_blocking_rtt",
                "spsc eventfd blocking rtt",
                "blk",
                "ns",
                rtt::spsc_blocking,
                rtt::blocking_follow,
            ),
            Scenario::xproc(
                "async_rtt",
                "spsc eventfd rtt, peer on tokio",
                "async",
                "ns",
                tokio::async_rtt,
                tokio::async_follow,
            ),
            Scenario::xproc(
                "spsc_futex_blocking_rtt",
                "spsc futex blocking rtt",
                "ftx",
                "ns",
                rtt::spsc_futex_blocking,
                rtt::blocking_follow,
            ),
        ],
    },
    Group {
        name: "tput",
        scenarios: &[
            Scenario::xproc(
                "spsc_tput",
                "spsc tput, 64 B (2 processes)",
                "spsc",
                "msg/s",
                tput::spsc::<8>,
                tput::spsc_follow::<8>,
            ),
            Scenario::local(
                "rtrb_tput",
                "rtrb tput, 64 B (in-process)",
                "rtrb",
                "msg/s",
                tput::rtrb::<8>,
            ),
            Scenario::xproc(
                "spsc_tput_8",
                "spsc tput, 8 B (2 processes)",
                "spsc8",
                "msg/s",
                tput::spsc::<1>,
                tput::spsc_follow::<1>,
            ),
            Scenario::local(
                "rtrb_tput_8",
                "rtrb tput, 8 B (in-process)",
                "rtrb8",
                "msg/s",
                tput::rtrb::<1>,
            ),
            Scenario::local(
                "spsc_inproc_tput",
                "spsc tput, 64 B (in-process)",
                "spsc-in",
                "msg/s",
                tput::spsc_inproc,
            ),
            Scenario::xproc(
                "uds_tput",
                "unix stream tput, 64 B, 1/write",
                "uds",
                "msg/s",
                tput::uds::<8>,
                tput::stream_follow::<8>,
            ),
            Scenario::xproc(
                "pipe_tput",
                "pipe tput, 64 B, 1/write",
                "pipe",
                "msg/s",
                tput::pipe,
                tput::stream_follow::<8>,
            ),
        ],
    },
    Group {
        name: "structures",
        scenarios: &[
            Scenario::xproc(
                "broadcast_tput_r1",
                "broadcast tput, 64 B, 1 reader",
                "bc1",
                "msg/s",
                broadcast::tput::<1>,
                broadcast::tput_follow,
            ),
            Scenario::xproc(
                "broadcast_tput_r2",
                "broadcast tput, 64 B, 2 readers",
                "bc2",
                "msg/s",
                broadcast::tput::<2>,
                broadcast::tput_follow,
            )
            .peers(2),
            Scenario::xproc(
                "broadcast_tput_r4",
                "broadcast tput, 64 B, 4 readers",
                "bc4",
                "msg/s",
                broadcast::tput::<4>,
                broadcast::tput_follow,
            )
            .peers(4),
            Scenario::xproc(
                "iceoryx2_tput_r1",
                "iceoryx2 pub-sub tput, 64 B, 1 subscriber",
                "ice1",
                "msg/s",
                ice_tput::tput::<1, 8>,
                ice_tput::tput_follow,
            ),
            Scenario::xproc(
                "iceoryx2_tput_r4",
                "iceoryx2 pub-sub tput, 64 B, 4 subscribers",
                "ice4",
                "msg/s",
                ice_tput::tput::<4, 8>,
                ice_tput::tput_follow,
            )
            .peers(4),
            Scenario::xproc(
                "fanin_tput",
                "fan-in tput, 64 B, 4 producers",
                "fanin",
                "msg/s",
                fanin::tput,
                fanin::tput_follow,
            )
            .peers(fanin::PRODUCERS),
            Scenario::xproc(
                "varlen_tput_64",
                "record ring tput, 64 B",
                "var64",
                "msg/s",
                varlen::tput::<8>,
                varlen::tput_follow::<8>,
            ),
            Scenario::xproc(
                "varlen_tput_1k",
                "record ring tput, 1 KiB",
                "var1k",
                "msg/s",
                varlen::tput::<128>,
                varlen::tput_follow::<128>,
            ),
            Scenario::xproc(
                "iceoryx2_tput_1k",
                "iceoryx2 pub-sub tput, 1 KiB",
                "ice1k",
                "msg/s",
                ice_tput::tput::<1, 128>,
                ice_tput::tput_follow,
            ),
            Scenario::xproc(
                "uds_tput_1k",
                "unix stream tput, 1 KiB, 1/write",
                "uds1k",
                "msg/s",
                tput::uds::<128>,
                tput::stream_follow::<128>,
            ),
            Scenario::xproc(
                "varlen_ns_42",
                "record ring, 42 B (4 KiB max), per msg",
                "var42",
                "ns",
                varlen::varlen_42,
                varlen::varlen_42_follow,
            ),
            Scenario::xproc(
                "spsc_ns_42",
                "spsc, 42 B fixed element, per msg",
                "spsc42",
                "ns",
                varlen::spsc_42,
                varlen::spsc_42_follow,
            ),
        ],
    },
    Group {
        name: "push",
        scenarios: &[
            Scenario::xproc(
                "push_ns",
                "push, consumer awake",
                "push",
                "ns",
                push::push,
                push::follow,
            ),
            Scenario::xproc(
                "push_fence_ns",
                "push + SeqCst fence, awake",
                "fence",
                "ns",
                push::push_fence,
                push::follow,
            ),
            Scenario::xproc(
                "push_notify_ns",
                "push_notify, consumer awake",
                "notify",
                "ns",
                push::push_notify,
                push::follow,
            ),
        ],
    },
];

/// Every scenario, in the order each round runs them.
pub fn all() -> impl Iterator<Item = &'static Scenario> {
    GROUPS.iter().flat_map(|group| group.scenarios)
}

/// The scenario `key` names.
pub fn scenario_by_key(key: &str) -> Option<&'static Scenario> {
    all().find(|s| s.key == key)
}

/// The scenarios `only` names, by key or group (all if it is empty), in
/// running order.
pub fn selected(only: &[String]) -> Result<Vec<&'static Scenario>, String> {
    let is_group = |name: &str| GROUPS.iter().any(|g| g.name == name);
    if let Some(unknown) = only
        .iter()
        .find(|name| scenario_by_key(name).is_none() && !is_group(name))
    {
        return Err(format!("--only: no scenario or group `{unknown}`"));
    }
    let named = |group: &Group, s: &Scenario| {
        only.is_empty() || only.iter().any(|name| name == s.key || name == group.name)
    };
    Ok(GROUPS
        .iter()
        .flat_map(|group| group.scenarios.iter().filter(|s| named(group, s)))
        .collect())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::{GROUPS, all, selected};

    #[test]
    fn keys_and_group_names_are_unique() {
        let mut names = HashSet::new();
        for name in all().map(|s| s.key).chain(GROUPS.iter().map(|g| g.name)) {
            assert!(names.insert(name), "`{name}` twice");
        }
    }

    #[test]
    fn only_selects_by_key_and_group_in_running_order() {
        let only = |names: &[&str]| {
            let names: Vec<String> = names.iter().map(|&n| n.to_owned()).collect();
            selected(&names).map(|s| s.iter().map(|s| s.key).collect::<Vec<_>>())
        };
        assert_eq!(
            only(&["spsc_tput", "push"]).unwrap(),
            ["spsc_tput", "push_ns", "push_fence_ns", "push_notify_ns"]
        );
        assert_eq!(
            only(&["uds_rtt", "raw_line_rtt"]).unwrap(),
            ["raw_line_rtt", "uds_rtt"]
        );
        assert_eq!(only(&[]).unwrap().len(), all().count());
        assert!(only(&["nothing"]).is_err());
    }

    #[test]
    fn peers_follow_scenarios_with_a_follow() {
        for s in all() {
            assert_eq!(s.follow.is_some(), s.peers > 0, "{}", s.key);
        }
    }
}
