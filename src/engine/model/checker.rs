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
//!
//! Sinks come and go ([`Op::Attach`], [`Op::Detach`], [`Op::Release`]) and
//! the input moves ([`Op::SetInput`]): a `Block` sink attached mid-stream
//! gets the replay history and then every byte once, one being detached
//! still writes out exactly what it had, and the sinks that stay see no
//! difference. `Drop` sinks in lines mode (with queues of at least
//! [`MAX_LINE`] bytes) receive whole lines of the stream in order; drop
//! notices reach only the `Drop` sinks that asked for them, are counted
//! apart from output, and one follows every drop episode once the sink
//! catches up.

use super::script::{driven, stream, Behaviour, ScriptIo, MAX_LINE};
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
    /// Makes this sink (modulo the slots) the input source, or none.
    SetInput(Option<usize>),
    /// Attaches a sink with this configuration; `input` makes it the source.
    Attach {
        config: SinkConfig,
        input: bool,
    },
    /// Starts detaching this sink (modulo the slots).
    Detach(usize),
    /// Releases this sink (modulo the slots), detaching it if needed.
    Release(usize),
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
    notice_bytes0: u64,
    notices0: u64,
    episodes0: u64,
}

impl Conn {
    fn starting(expected: Vec<u8>, st: &SinkStats) -> Conn {
        Conn {
            expected,
            delivered0: st.delivered,
            offered0: st.offered,
            dropped0: st.dropped,
            notice_bytes0: st.notice_bytes,
            notices0: st.notices,
            episodes0: st.drop_episodes,
        }
    }
}

const NOTICE_START: &[u8] = b"\r\n[multiplex: ";
const NOTICE_END: &[u8] = b" dropped]\r\n";

/// `got` without the drop notices in it, and how many complete ones there
/// were. `notice_bytes` (from the statistics) says how many bytes of `got`
/// are notices: what the complete ones do not account for is the start of
/// one still being written, at the very end.
fn strip_notices(got: &[u8], notice_bytes: u64) -> (Vec<u8>, u64) {
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let (mut out, mut rest, mut n, mut stripped) = (Vec::new(), got, 0, 0);
    while let Some(at) = find(rest, NOTICE_START) {
        let Some(e) = find(&rest[at..], NOTICE_END) else {
            break;
        };
        let text = &rest[at + NOTICE_START.len()..at + e];
        assert!(
            text.ends_with(b" bytes") || text.ends_with(b" byte"),
            "malformed notice {:?}",
            String::from_utf8_lossy(&rest[at..at + e + NOTICE_END.len()])
        );
        out.extend_from_slice(&rest[..at]);
        n += 1;
        stripped += e + NOTICE_END.len();
        rest = &rest[at + e + NOTICE_END.len()..];
    }
    out.extend_from_slice(rest);
    let partial = (notice_bytes as usize)
        .checked_sub(stripped)
        .expect("more notice text than notice bytes counted");
    assert!(
        partial <= out.len(),
        "notice bytes counted but not received"
    );
    let tail = &out[out.len() - partial..];
    let k = partial.min(NOTICE_START.len());
    assert_eq!(
        &tail[..k],
        &NOTICE_START[..k],
        "an unfinished notice is not one"
    );
    out.truncate(out.len() - partial);
    (out, n)
}

/// Whether `got` is made of whole lines of `want`, in order: every line
/// received starts where a line of `want` starts (the connection's first
/// may start anywhere: it opened mid-line) and is followed by no other
/// line's tail; the last may be unfinished.
fn whole_lines_in_order(got: &[u8], want: &[u8]) -> bool {
    let mut pos = 0;
    for (k, line) in got.split_inclusive(|&b| b == b'\n').enumerate() {
        let found = (pos..=want.len().saturating_sub(line.len()))
            .find(|&q| (k == 0 || q == 0 || want[q - 1] == b'\n') && want[q..].starts_with(line));
        match found {
            Some(q) => pos = q + line.len(),
            None => return false,
        }
    }
    true
}

pub struct Model {
    mux: Mux,
    io: ScriptIo,
    /// Each slot's configuration (what the model needs of it).
    configs: Vec<SinkConfig>,
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
        let configs = config.sinks.clone();
        let (cap, replay) = (config.queue_capacity, config.replay_capacity);
        let coalesce = config.coalesce_ns;
        let mut io = ScriptIo::new(MAX_SINKS);
        let mut mux = Mux::new(config).expect("valid configuration");
        pump(&mut mux, &mut io);
        let model = Model {
            mux,
            io,
            configs,
            cap,
            replay,
            accepted: Vec::new(),
            conns: (0..MAX_SINKS).map(|_| Conn::default()).collect(),
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

    /// Slots in use or released.
    fn slots(&self) -> usize {
        self.mux.sink_count()
    }

    /// Whether sink `i` gets new output now.
    fn receiving(&self, i: usize) -> bool {
        self.mux.has_sink(i) && !self.mux.is_detaching(i) && self.stats(i).state == SinkState::Open
    }

    /// Applies `op` and checks every invariant.
    pub fn step(&mut self, op: Op) {
        let n = self.slots();
        // An operation on a released slot is refused and changes nothing.
        let target = match op {
            Op::Writable(i)
            | Op::Open(i)
            | Op::Close(i)
            | Op::Input(i, ..)
            | Op::Break(i)
            | Op::Detach(i)
            | Op::Release(i)
            | Op::SetInput(Some(i)) => Some(i % n),
            _ => None,
        };
        if let Some(i) = target.filter(|&i| !self.mux.has_sink(i)) {
            assert_eq!(self.mux.sink_writable(i), Err(NoSuchSink(i)));
            assert_eq!(
                self.mux.sink_event(i, SinkEvent::Opened),
                Err(NoSuchSink(i))
            );
            assert_eq!(self.mux.input(i, 1, 1), Err(NoSuchSink(i)));
            assert_eq!(self.mux.detach(i), Err(DetachError::NoSuchSink(i)));
            assert!(self.mux.stats(i).is_err());
            self.check();
            return;
        }
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
                    self.receiving(i) && {
                        let s = self.stats(i);
                        s.overflow == Overflow::Block && s.queued as usize == self.cap
                    }
                });
                let open: Vec<bool> = (0..n).map(|i| self.receiving(i)).collect();
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
            Op::Behave(i, b) => self.io.behaviour[i % MAX_SINKS] = b,
            Op::Writable(i) => {
                driven(&mut self.mux, &mut self.io, |m| m.sink_writable(i % n)).unwrap()
            }
            Op::Open(i) => {
                let i = i % n;
                let before = self.stats(i);
                if before.state != SinkState::Open && !self.mux.is_detaching(i) {
                    // A new connection: what the old one received is history.
                    self.io.received[i].clear();
                    self.conns[i] = Conn::starting(self.history(), &before);
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
            Op::SetInput(sink) => {
                let sink = sink.map(|i| i % n);
                let events = self.io.events.len();
                let r = driven(&mut self.mux, &mut self.io, |m| m.set_input(sink));
                if sink.is_some_and(|i| self.mux.is_detaching(i)) {
                    assert!(r.is_err(), "a sink being detached became the input");
                } else {
                    r.unwrap();
                    assert_eq!(self.mux.input_source(), sink);
                }
                assert_eq!(
                    self.io.events.len(),
                    events,
                    "moving the input flapped the frontend"
                );
            }
            Op::Attach { config, input } => {
                let free = (0..n).find(|&i| !self.mux.has_sink(i));
                let was_open = self.mux.frontend_open();
                if let Some(i) = free.or((n < MAX_SINKS).then_some(n)) {
                    // What the slot's previous sink got is history.
                    self.io.received[i].clear();
                    self.io.behaviour[i] = Behaviour::Open;
                }
                let r = driven(&mut self.mux, &mut self.io, |m| m.attach(config));
                let want_err = if free.is_none() && n == MAX_SINKS {
                    Some(AttachError::Full)
                } else if config.drop_notice && config.overflow == Overflow::Block {
                    Some(AttachError::Config(ConfigError::NoticeOnBlockSink(
                        free.unwrap_or(n),
                    )))
                } else {
                    None
                };
                match (r, want_err) {
                    (Err(e), Some(w)) => assert_eq!(e, w),
                    (Ok(i), None) => {
                        assert_eq!(i, free.unwrap_or(n), "not the lowest free slot");
                        if i == self.configs.len() {
                            self.configs.push(config);
                        } else {
                            self.configs[i] = config;
                        }
                        // A new sink's counters start at 0; the replay is
                        // part of what it is offered.
                        let expected = if config.open {
                            self.history()
                        } else {
                            Vec::new()
                        };
                        self.conns[i] = Conn {
                            expected,
                            ..Conn::default()
                        };
                        if config.open && !was_open {
                            assert!(self.mux.frontend_open());
                        }
                        if input {
                            driven(&mut self.mux, &mut self.io, |m| m.set_input(Some(i))).unwrap();
                        }
                    }
                    (r, w) => panic!("attach {config:?}: got {r:?}, want {w:?}"),
                }
            }
            Op::Detach(i) | Op::Release(i) => {
                let i = i % n;
                let others = (0..n)
                    .filter(|&k| k != i && self.mux.has_sink(k) && !self.mux.is_detaching(k))
                    .count();
                let already = self.mux.is_detaching(i);
                let before = self.stats(i);
                let was_input = self.mux.input_source() == Some(i);
                let release = matches!(op, Op::Release(_));
                let r = driven(&mut self.mux, &mut self.io, |m| {
                    if release {
                        m.release(i).map(|st| st.queued as usize)
                    } else {
                        m.detach(i)
                    }
                });
                if others == 0 && !already {
                    assert_eq!(r, Err(DetachError::LastSink(i)));
                } else {
                    let left = r.unwrap();
                    if was_input {
                        assert_eq!(self.mux.input_source(), None);
                    }
                    if release {
                        assert!(!self.mux.has_sink(i));
                        self.io.received[i].clear();
                        self.conns[i] = Conn::default();
                    } else {
                        let st = self.stats(i);
                        assert_eq!(left as u64, st.queued);
                        if before.overflow == Overflow::Drop {
                            assert_eq!(st.queued, 0, "a drop sink kept its queue");
                        }
                    }
                }
            }
            Op::Input(i, len, room) => {
                let i = i % n;
                let before = self.io.input.len();
                let data = stream(1_000_000 + before, len);
                let used = driven(&mut self.mux, &mut self.io, |m| m.input(i, len, room)).unwrap();
                self.io.input.extend_from_slice(&data[..used]);
                if self.mux.input_source() == Some(i) {
                    assert!(!self.mux.is_detaching(i));
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

    /// What a sink that opens now is replayed.
    fn history(&self) -> Vec<u8> {
        let h = self.accepted.len().saturating_sub(self.replay);
        self.accepted[h..].to_vec()
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
        for i in 0..self.slots() {
            if !self.mux.has_sink(i) {
                assert!(!self.io.watching[i], "released sink {i} still watched");
                continue;
            }
            let st = self.stats(i);
            let cfg = self.configs[i];
            let conn = &self.conns[i];
            assert_eq!(
                st.offered,
                st.delivered + st.queued + st.dropped,
                "sink {i}"
            );
            assert_eq!(st.overflow, cfg.overflow);
            if !cfg.drop_notice {
                assert_eq!(
                    (st.notices, st.notice_bytes),
                    (0, 0),
                    "sink {i}: unasked notice"
                );
            }
            // Whole-line drops search each byte a bounded number of times
            // (issue 17, item 1); nothing else searches at all.
            let scanned = self.mux.scanned_bytes(i).unwrap();
            if cfg.overflow == Overflow::Drop && cfg.drop_unit == DropUnit::Lines {
                assert!(
                    scanned <= 5 * st.offered,
                    "sink {i}: {scanned} bytes searched for {} offered",
                    st.offered
                );
            } else {
                assert_eq!(scanned, 0, "sink {i} searched for newlines");
            }
            connected |= st.state != SinkState::Closed && !self.mux.is_detaching(i);
            if st.state == SinkState::Closed {
                assert!(self.io.received[i].is_empty() && st.queued == 0);
                continue;
            }
            let (got, notices) =
                strip_notices(&self.io.received[i], st.notice_bytes - conn.notice_bytes0);
            assert_eq!(
                st.delivered - conn.delivered0 + st.notice_bytes - conn.notice_bytes0,
                self.io.received[i].len() as u64,
                "sink {i}"
            );
            assert_eq!(notices, st.notices - conn.notices0, "sink {i}: notices");
            if self.io.watching[i] {
                // (or with a notice to write)
                assert!(
                    st.queued > 0 || cfg.drop_notice,
                    "sink {i} watched with an empty queue"
                );
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
                    if !self.mux.is_detaching(i) {
                        assert_eq!(st.offered - conn.offered0, conn.expected.len() as u64);
                    }
                    assert!(is_subsequence(&got, &conn.expected), "drop sink {i}");
                    if cfg.drop_unit == DropUnit::Lines && self.cap >= MAX_LINE {
                        assert!(
                            whole_lines_in_order(&got, &conn.expected),
                            "drop sink {i} (lines) cut a line: got {got:?}, stream {:?}",
                            conn.expected
                        );
                    }
                }
                (_, _) => assert!(is_subsequence(&got, &conn.expected), "failed sink {i}"),
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
        for i in 0..self.slots() {
            if self.io.watching[i] {
                self.step(Op::Writable(i));
            }
        }
        assert!(
            !self.waiting,
            "lost wake-up: the frontend was never told to resume"
        );
        for i in 0..self.slots() {
            if !self.mux.has_sink(i) {
                continue;
            }
            let st = self.stats(i);
            let cfg = self.configs[i];
            let conn = &self.conns[i];
            // A drop sink being detached lost its queue (and the end of
            // its drop episode) when it started detaching.
            let cut = st.overflow == Overflow::Drop && self.mux.is_detaching(i);
            if st.state != SinkState::Open || cut {
                continue;
            }
            let (got, _) =
                strip_notices(&self.io.received[i], st.notice_bytes - conn.notice_bytes0);
            let want = &conn.expected;
            assert_eq!(st.queued, 0, "sink {i} did not drain");
            match (st.overflow, cfg.drop_unit) {
                (Overflow::Block, _) => assert_eq!(&got, want, "block sink {i}"),
                (Overflow::Drop, DropUnit::Bytes) => {
                    let tail = want.len().min(self.cap);
                    assert!(got.ends_with(&want[want.len() - tail..]), "drop sink {i}");
                }
                // Whole lines in order, checked in `check`; the newest line
                // may have been dropped whole.
                (Overflow::Drop, DropUnit::Lines) => {}
            }
            if cfg.drop_notice {
                let (episodes, notices) = (
                    st.drop_episodes - conn.episodes0,
                    st.notices - conn.notices0,
                );
                // Caught up: every episode was told, but one whose bytes were
                // all dropped while the queue stayed empty (lines mode
                // skipping the rest of a cut line) waits for output.
                assert!(
                    notices == episodes
                        || (cfg.drop_unit == DropUnit::Lines && notices + 1 == episodes),
                    "sink {i}: {episodes} drop episodes, {notices} notices"
                );
            }
        }
    }
}
