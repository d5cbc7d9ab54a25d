//! Property test: random operation sequences against a trivial model.
//!
//! Checked after every step: each open `Block` sink has received a prefix of
//! exactly what was offered to it, the rest queued; each `Drop` sink has
//! received an in-order subsequence; `offered == delivered + queued + dropped`;
//! "would block" only when an open `Block` sink's queue is full; the frontend's
//! OPENED/CLOSED state follows the sinks. With a coalescing window, writes go
//! through [`Mux::write_at`] on a scripted clock whose timer fires at
//! [`Mux::poll_timeout`]: output after a quiet window is written at once,
//! no byte waits longer than the window, and queued bytes in a sink that is
//! not pushing back always have a deadline. At the end, once every sink drains,
//! `Block` sinks hold the whole stream, `Drop` sinks end with its newest bytes,
//! and a frontend that was turned away has been told it may write again.

use super::script::{driven, stream, Behaviour, ScriptIo};
use crate::engine::*;

/// One step of a scripted run.
#[derive(Clone, Debug)]
pub enum Op {
    /// The frontend writes this many bytes ([`Mux::write_at`] at the clock).
    Write(usize),
    /// The frontend writes through [`Mux::write`], which never coalesces.
    WriteNow(usize),
    /// The clock moves on; the flush timer fires if its deadline passed.
    Advance(u64),
    /// The caller flushes early (as before freeing the multiplexer).
    Flush,
    Behave(usize, Behaviour),
    Writable(usize),
    Open(usize),
    Close(usize),
    Input(usize, usize, usize),
    Break(usize),
}

/// What the model knows of one sink's current connection.
#[derive(Default)]
struct Conn {
    /// Bytes offered since it (re)opened, replay first.
    expected: Vec<u8>,
    /// Counters at the start of this connection.
    delivered0: u64,
    offered0: u64,
    dropped0: u64,
}

pub struct Model {
    mux: Mux,
    io: ScriptIo,
    n: usize,
    cap: usize,
    replay: usize,
    accepted: Vec<u8>,
    conns: Vec<Conn>,
    waiting: bool,
    woken_seen: usize,
    coalesce: u64,
    now: u64,
    /// When output last went out at once or by a flush.
    last_out: Option<u64>,
    /// When the pending flush deadline was set.
    deferred_since: Option<u64>,
}

fn is_subsequence(small: &[u8], big: &[u8]) -> bool {
    let mut it = big.iter();
    small.iter().all(|b| it.any(|c| c == b))
}

impl Model {
    /// A model around a new multiplexer built from `config` (which must be valid).
    pub fn new(config: Config) -> Model {
        let n = config.sinks.len();
        let (cap, replay) = (config.queue_capacity, config.replay_capacity);
        let coalesce = config.coalesce_ns;
        let mut io = ScriptIo::new(n);
        let mut mux = Mux::new(config).expect("valid configuration");
        pump(&mut mux, &mut io);
        let model = Model {
            mux,
            io,
            n,
            cap,
            replay,
            accepted: Vec::new(),
            conns: (0..n).map(|_| Conn::default()).collect(),
            waiting: false,
            woken_seen: 0,
            coalesce,
            now: 0,
            last_out: None,
            deferred_since: None,
        };
        model.check();
        model
    }

    fn stats(&self, i: usize) -> SinkStats {
        self.mux.stats(i).unwrap()
    }

    /// Applies `op` and checks every invariant.
    pub fn step(&mut self, op: Op) {
        let n = self.n;
        match op {
            Op::Write(len) | Op::WriteNow(len) => {
                let coalescing = matches!(op, Op::Write(_)) && self.coalesce > 0;
                let pending = self.mux.poll_timeout().is_some();
                let idle = !pending
                    && self
                        .last_out
                        .map_or(true, |t| self.now.saturating_sub(t) >= self.coalesce);
                let room = self.mux.write_room();
                let full_blocker = (0..n).any(|i| {
                    let s = self.stats(i);
                    s.state == SinkState::Open
                        && s.overflow == Overflow::Block
                        && s.queued as usize == self.cap
                });
                let open: Vec<bool> = (0..n)
                    .map(|i| self.stats(i).state == SinkState::Open)
                    .collect();
                let data = stream(self.accepted.len(), len);
                let now = self.now;
                let r = driven(&mut self.mux, &mut self.io, |m| match op {
                    Op::Write(_) => m.write_at(&data, now),
                    _ => m.write(&data),
                });
                match r {
                    Err(WouldBlock) => {
                        assert_eq!(room, 0);
                        assert!(full_blocker, "turned away with no full block sink");
                        self.waiting = true;
                    }
                    Ok(k) => {
                        let most = len.min(self.cap);
                        if pending {
                            // A flush may have made room first.
                            assert!(k >= most.min(room) && k <= most);
                        } else {
                            assert_eq!(k, most.min(room));
                        }
                        let data = &data[..k];
                        self.accepted.extend_from_slice(data);
                        for i in (0..n).filter(|&i| open[i]) {
                            self.conns[i].expected.extend_from_slice(data);
                        }
                    }
                }
                if !coalescing {
                    assert_eq!(self.mux.poll_timeout(), None, "plain write left a deadline");
                } else if idle {
                    assert_eq!(self.mux.poll_timeout(), None, "quiet-window write was held");
                    self.last_out = Some(self.now);
                } else if pending && self.mux.poll_timeout().is_none() {
                    // It did not fit in a queue: the held output went out first.
                    self.last_out = Some(self.now);
                }
                if !pending && self.mux.poll_timeout().is_some() {
                    self.deferred_since = Some(self.now);
                }
            }
            Op::Advance(dt) => {
                self.now += dt;
                if self.mux.poll_timeout().is_some_and(|d| d <= self.now) {
                    self.flush();
                }
            }
            Op::Flush => self.flush(),
            Op::Behave(i, b) => self.io.behaviour[i % n] = b,
            Op::Writable(i) => {
                driven(&mut self.mux, &mut self.io, |m| m.sink_writable(i % n)).unwrap()
            }
            Op::Open(i) => {
                let i = i % n;
                let before = self.stats(i);
                if before.state != SinkState::Open {
                    // A new connection: what the old one received is history.
                    self.io.received[i].clear();
                    let h = self.accepted.len().saturating_sub(self.replay);
                    self.conns[i] = Conn {
                        expected: self.accepted[h..].to_vec(),
                        delivered0: before.delivered,
                        offered0: before.offered,
                        dropped0: before.dropped,
                    };
                }
                driven(&mut self.mux, &mut self.io, |m| {
                    m.sink_event(i, SinkEvent::Opened)
                })
                .unwrap();
            }
            Op::Close(i) => {
                let i = i % n;
                driven(&mut self.mux, &mut self.io, |m| {
                    m.sink_event(i, SinkEvent::Closed)
                })
                .unwrap();
                self.io.received[i].clear();
                self.conns[i] = Conn::default();
            }
            Op::Input(i, len, room) => {
                let i = i % n;
                let before = self.io.input.len();
                let data = stream(1_000_000 + before, len);
                let used = driven(&mut self.mux, &mut self.io, |m| m.input(i, len, room)).unwrap();
                self.io.input.extend_from_slice(&data[..used]);
                if self.mux.input_source() == Some(i) {
                    assert_eq!(used, len.min(room));
                    assert_eq!(&self.io.input[before..], &data[..used]);
                    if used > 0 {
                        // Typing flushes held output; the echo goes out at once.
                        assert_eq!(self.mux.poll_timeout(), None);
                        self.last_out = None;
                    }
                } else {
                    assert_eq!(used, 0);
                }
            }
            Op::Break(i) => {
                let i = i % n;
                let before = self.io.events.len();
                driven(&mut self.mux, &mut self.io, |m| {
                    m.sink_event(i, SinkEvent::Break)
                })
                .unwrap();
                let forwarded = self.io.events.len() - before;
                assert_eq!(forwarded, usize::from(self.mux.input_source() == Some(i)));
                self.io.events.truncate(before);
            }
        }
        if self.io.frontend_writable != self.woken_seen {
            assert!(self.waiting, "woken without having been turned away");
            assert!(self.mux.write_room() > 0);
            self.woken_seen = self.io.frontend_writable;
            self.waiting = false;
        }
        self.check();
    }

    fn flush(&mut self) {
        let pending = self.mux.poll_timeout().is_some();
        let now = self.now;
        driven(&mut self.mux, &mut self.io, |m| m.handle_timeout(now));
        assert_eq!(self.mux.poll_timeout(), None);
        if pending {
            self.last_out = Some(self.now);
        }
        self.deferred_since = None;
    }

    /// Checks the invariants that hold after every step.
    pub fn check(&self) {
        let deadline = self.mux.poll_timeout();
        if let Some(d) = deadline {
            let since = self
                .deferred_since
                .expect("a deadline without a deferred write");
            assert!(
                d <= since + self.coalesce,
                "output held longer than the window"
            );
            assert!(d >= self.now, "the timer missed the deadline");
        }
        let mut connected = false;
        for i in 0..self.n {
            let st = self.stats(i);
            let conn = &self.conns[i];
            let got = &self.io.received[i];
            assert_eq!(
                st.offered,
                st.delivered + st.queued + st.dropped,
                "sink {i}"
            );
            connected |= st.state != SinkState::Closed;
            if st.state == SinkState::Closed {
                assert!(got.is_empty() && st.queued == 0);
                continue;
            }
            assert_eq!(st.delivered - conn.delivered0, got.len() as u64, "sink {i}");
            if self.io.watching[i] {
                assert!(st.queued > 0, "sink {i} watched with an empty queue");
            } else if st.queued > 0 {
                assert!(
                    deadline.is_some(),
                    "sink {i}: queued bytes nobody will flush"
                );
            }
            match (st.state, st.overflow) {
                (SinkState::Open, Overflow::Block) => {
                    assert_eq!(st.dropped, conn.dropped0, "block sink {i} lost bytes");
                    assert_eq!(&conn.expected[..got.len()], &got[..], "block sink {i}");
                    assert_eq!(got.len() as u64 + st.queued, conn.expected.len() as u64);
                }
                (SinkState::Open, Overflow::Drop) => {
                    assert_eq!(st.offered - conn.offered0, conn.expected.len() as u64);
                    assert!(is_subsequence(got, &conn.expected), "drop sink {i}");
                }
                (_, _) => assert!(is_subsequence(got, &conn.expected), "failed sink {i}"),
            }
        }
        assert_eq!(self.mux.frontend_open(), connected);
    }

    /// Lets every sink drain and checks the end-of-run promises.
    pub fn drain(&mut self) {
        if let Some(d) = self.mux.poll_timeout() {
            self.step(Op::Advance(d - self.now));
        }
        self.io
            .behaviour
            .iter_mut()
            .for_each(|b| *b = Behaviour::Open);
        for i in 0..self.n {
            if self.io.watching[i] {
                self.step(Op::Writable(i));
            }
        }
        assert!(
            !self.waiting,
            "lost wake-up: the frontend was never told to resume"
        );
        for i in 0..self.n {
            let st = self.stats(i);
            let (got, want) = (&self.io.received[i], &self.conns[i].expected);
            if st.state != SinkState::Open {
                continue;
            }
            match st.overflow {
                Overflow::Block => assert_eq!(got, want, "block sink {i}"),
                Overflow::Drop => {
                    let tail = want.len().min(self.cap);
                    assert!(got.ends_with(&want[want.len() - tail..]), "drop sink {i}");
                }
            }
        }
    }
}
