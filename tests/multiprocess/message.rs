//! The 64-byte test message and its checks.
//!
//! Word 0 is the sequence number, word 1 the sending client's id, words 2..7
//! are derived from both, and word 7 is a checksum of words 0..7: a message
//! torn, corrupted, lost, duplicated, reordered or sent by the wrong client
//! fails [`Stream::check`] with a message saying which.

/// What every test sends: eight words, 64 bytes.
pub(crate) type Msg = [u64; 8];

/// Constants the derived words are mixed with.
const MIX: [u64; 5] = [
    0x9e37_79b9_7f4a_7c15,
    0xbf58_476d_1ce4_e5b9,
    0x94d0_49bb_1331_11eb,
    0xd6e8_feb8_6659_fd93,
    0xff51_afd7_ed55_8ccd,
];

/// One xorshift64 step: a bijection of `u64` that spreads every bit.
///
/// This file is compiled without optimisation in the default test profile,
/// where every method call (`wrapping_mul`, `rotate_left`, an iterator's
/// `next`) is a real call: the message code uses plain operators only, so
/// that checking 10 million messages costs little next to moving them.
#[inline(always)]
const fn mix(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// A checksum of the seven words before it: a xorshift fold, so that a change
/// to any bit of any word, or two different words swapped, changes it.
#[inline(always)]
pub(crate) const fn checksum(w: &[u64; 7]) -> u64 {
    let mut acc = 0xcbf2_9ce4_8422_2325;
    acc = mix(acc ^ w[0]);
    acc = mix(acc ^ w[1]);
    acc = mix(acc ^ w[2]);
    acc = mix(acc ^ w[3]);
    acc = mix(acc ^ w[4]);
    acc = mix(acc ^ w[5]);
    mix(acc ^ w[6])
}

/// Message `seq` of `client`.
#[inline(always)]
pub(crate) const fn message(client: u64, seq: u64) -> Msg {
    let base = mix(seq ^ (client << 48) ^ MIX[0]);
    let words = [
        seq,
        client,
        base,
        base ^ MIX[1],
        mix(base) ^ MIX[2],
        !seq ^ MIX[3],
        ((seq << 29) ^ (seq >> 11)) ^ MIX[4],
    ];
    let sum = checksum(&words);
    [
        words[0], words[1], words[2], words[3], words[4], words[5], words[6], sum,
    ]
}

/// The messages received from one client so far, which must be `0, 1, 2, ...`
/// in order, each exactly once and intact.
#[derive(Debug)]
pub(crate) struct Stream {
    client: u64,
    /// The next sequence number expected; also how many arrived.
    pub(crate) next: u64,
}

impl Stream {
    pub(crate) fn new(client: u64) -> Self {
        Self { client, next: 0 }
    }

    /// Checks that `msg` is the next message, intact: equal to
    /// `message(client, next)` in every word, checksum included (so a message
    /// whose checksum does not match its words never passes).
    #[inline]
    pub(crate) fn check(&mut self, msg: &Msg) -> Result<(), String> {
        if *msg == message(self.client, self.next) {
            self.next += 1;
            Ok(())
        } else {
            Err(self.diagnose(msg))
        }
    }

    /// Like [`check`](Self::check), panicking with the reason.
    #[inline]
    #[track_caller]
    pub(crate) fn accept(&mut self, msg: &Msg) {
        if let Err(reason) = self.check(msg) {
            panic!("{reason}");
        }
    }

    fn diagnose(&self, msg: &Msg) -> String {
        let (client, next) = (self.client, self.next);
        let words = [msg[0], msg[1], msg[2], msg[3], msg[4], msg[5], msg[6]];
        let what = if msg[7] != checksum(&words) {
            "torn or corrupted: the checksum in word 7 does not match words 0..7".to_owned()
        } else if msg[1] != client {
            format!("sent by client {}, not {client}", msg[1])
        } else if msg[0] < next {
            format!("sequence {} again: a duplicate or a reordering", msg[0])
        } else if msg[0] > next {
            format!(
                "sequence {}: {} skipped, lost or reordered",
                msg[0],
                msg[0] - next
            )
        } else {
            "derived words differ from the sequence's".to_owned()
        };
        format!("client {client}, message {next}: {what}; got {msg:x?}")
    }
}

#[test]
fn message_checks_catch_each_fault() {
    let mut stream = Stream::new(3);
    for seq in 0..4 {
        stream.accept(&message(3, seq));
    }
    let mut torn = message(3, 4);
    torn[4] ^= 1;
    assert!(stream.check(&torn).unwrap_err().contains("checksum"));
    assert!(
        stream
            .check(&message(2, 4))
            .unwrap_err()
            .contains("client 2")
    );
    assert!(stream.check(&message(3, 3)).unwrap_err().contains("again"));
    assert!(
        stream
            .check(&message(3, 9))
            .unwrap_err()
            .contains("5 skipped")
    );
    assert_eq!(stream.next, 4);
    stream.accept(&message(3, 4));
    assert_ne!(message(0, 1), message(1, 0));
}
