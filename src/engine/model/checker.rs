//! Property test: random operation sequences against a trivial model.
//!
//! The model is an independent oracle: it works out from the operations
//! alone (and from what the scripted sinks took) what the engine must say,
//! and compares. Checked after every step: each open `Block` sink has
//! received a prefix of exactly what was offered to it, the rest queued;
//! each `Drop` sink has received an in-order subsequence;
//! `offered == delivered + queued + dropped`; each sink's state
//! ([`SinkState`]) is the one its events, failures and detaching lead to;
//! the room for a write ([`Mux::write_room`]) is what the model's own count
//! of the open `Block` sinks' queues leaves, "would block" comes exactly
//! when that is 0, and every write accepts what that room allows; the
//! frontend's OPENED/CLOSED state follows the sinks; the frontend's offers
//! are counted ([`MuxStats`]). With a coalescing window, writes go through
//! [`Mux::write_at`] on a scripted clock whose timer fires at the model's
//! own deadline: output after a quiet window is written at once, output
//! within one is held until one window after the output before it (the
//! engine's [`Mux::poll_timeout`] must name exactly that time), and queued
//! bytes in a sink that is not pushing back always have a deadline. At the
//! end, once every sink drains, `Block` sinks hold the whole stream, `Drop`
//! sinks end with its newest bytes, and a frontend that was turned away has
//! been told it may write again.
//!
//! Sinks come and go ([`Op::Attach`], [`Op::Detach`], [`Op::Release`]) and
//! the input moves ([`Op::SetInput`]): a `Block` sink attached mid-stream
//! gets the replay history and then every byte once, one being detached
//! still writes out exactly what it had and is then detached, and the
//! sinks that stay see no difference. `Drop` sinks in lines mode (with
//! queues of at least [`MAX_LINE`] bytes) receive whole lines of the stream
//! in order; drop notices reach only the `Drop` sinks that asked for them,
//! are counted apart from output, and one follows every drop episode once
//! the sink catches up. The sink reports ([`SinkReport`]) say every failure
//! once, every finished detach once, and drop episodes as they start and
//! stop, none lost.
//!
//! Line stamps and the replay head: the model keeps the start time of the
//! line every byte belongs to (writes carry a wall clock, or none:
//! [`Op::WriteNow`]) and what the head and the tail hold. What each sink
//! received is parsed into the frontend's bytes, stamps, notices and skip
//! markers ([`super::render`]); every byte written is counted in exactly
//! one of `delivered`, `stamp_bytes`, `notice_bytes` and
//! `skip_marker_bytes`, and the complete stamps, notices and markers in
//! `stamps`, `notices` and `skip_markers`. A `Block` sink receives exactly
//! the model's rendering of its connection: the replay (head part, marker
//! with the count of what was kept in neither, tail, each byte once), then
//! live output, with a stamp of the right time before the first byte, each
//! byte after a newline and the first byte after a marker or a cut (a
//! stamped sink), none elsewhere, and unstamped sinks get no stamp at all.
//! A stamped `Drop` sink has a stamp before every fragment of a line it
//! receives; in lines mode each line's stamp is the time of that line. A
//! head reset ([`Op::ResetHead`]) cuts the head replay of sinks still
//! being written it (counted as dropped) and starts a new head.
//! [`Op::Migrate`] exports the replay state, imports it into a new
//! multiplexer (exporting that gives the same blob) and checks that sinks
//! opening there are replayed what one opening here would be, and that
//! output there continues the lines here.

use super::render::{agree, guest, len_of, parse, Token};
use super::script::{driven, stream, Behaviour, ScriptIo, MAX_LINE};
use crate::engine::*;

/// One step of a scripted run.
#[derive(Clone, Debug)]
pub enum Op {
    /// The frontend writes this many bytes ([`Mux::write_at_wall`] at the
    /// clock, with a wall clock that moves on with every write).
    Write(usize),
    /// The frontend writes through [`Mux::write`], which never coalesces
    /// and has no wall clock (its lines' stamps are unknown).
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
    /// The head of the output starts again ([`Mux::reset_head`]).
    ResetHead,
    /// The replay state goes to a new multiplexer and is checked there
    /// (this one is not changed).
    Migrate,
}

/// What the model expects of a slot: the engine's [`SinkState`], worked
/// out from the operations, the failures the scripted sinks made and
/// what they took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Vacant,
    Open,
    Closed,
    Failed,
    Detaching,
    Detached,
}

impl Life {
    fn state(self) -> Option<SinkState> {
        match self {
            Life::Vacant => None,
            Life::Open => Some(SinkState::Open),
            Life::Closed => Some(SinkState::Closed),
            Life::Failed => Some(SinkState::Failed),
            Life::Detaching => Some(SinkState::Detaching),
            Life::Detached => Some(SinkState::Detached),
        }
    }

    /// Attached: not on its way out (nor gone).
    fn attached(self) -> bool {
        matches!(self, Life::Open | Life::Closed | Life::Failed)
    }

    /// Counts as connected for the frontend.
    fn connected(self) -> bool {
        matches!(self, Life::Open | Life::Failed)
    }
}

/// What the model knows of one sink's current connection.
#[derive(Default)]
struct Conn {
    /// Bytes offered since it (re)opened, replay first.
    expected: Vec<u8>,
    /// The start time of the line each of them belongs to (`None`: unknown).
    times: Vec<Option<u64>>,
    /// How many of them are the head part of the replay (written before the
    /// rest, not from the queue).
    head_len: usize,
    /// The skip marker: before `expected[.0]`, for `.1` bytes.
    marker: Option<(usize, u64)>,
    /// A stamp that was being written when the head replay was cut: it is
    /// finished before `expected[.0]` (and that byte's own stamp).
    ghost: Option<(usize, Option<u64>)>,
    /// Whether its head replay was cut.
    cut: bool,
    /// Counters at the start of this connection.
    delivered0: u64,
    offered0: u64,
    dropped0: u64,
    notice_bytes0: u64,
    notices0: u64,
    episodes0: u64,
    stamps0: u64,
    stamp_bytes0: u64,
    markers0: u64,
    marker_bytes0: u64,
}

impl Conn {
    fn starting(plan: Replayed, st: &SinkStats) -> Conn {
        Conn {
            expected: plan.bytes,
            times: plan.times,
            head_len: plan.head_len,
            marker: plan.marker,
            delivered0: st.delivered,
            offered0: st.offered,
            dropped0: st.dropped,
            notice_bytes0: st.notice_bytes,
            notices0: st.notices,
            episodes0: st.drop_episodes,
            stamps0: st.stamps,
            stamp_bytes0: st.stamp_bytes,
            markers0: st.skip_markers,
            marker_bytes0: st.skip_marker_bytes,
            ..Conn::default()
        }
    }

    /// Its frontend bytes (from `from` on) and the texts a sink gets with
    /// them: the marker, and (`stamped`) a stamp before the first byte, each
    /// byte after a newline and after the marker.
    fn render(&self, stamped: bool) -> Vec<Token> {
        self.render_upto(stamped, usize::MAX)
    }

    /// [`Conn::render`], stopped once it has `most` tokens or more.
    fn render_upto(&self, stamped: bool, most: usize) -> Vec<Token> {
        let mut out = Vec::with_capacity(self.expected.len().min(most) + 4);
        for (k, &b) in self.expected.iter().enumerate() {
            if out.len() >= most {
                return out;
            }
            self.texts_before(k, stamped, &mut out);
            out.push(Token::Guest(b));
        }
        if let Some((p, t)) = self.ghost {
            if p == self.expected.len() {
                out.push(Token::Stamp(micros(t)));
            }
        }
        if let Some((p, n)) = self.marker {
            if p == self.expected.len() {
                out.push(Token::Marker(n));
            }
        }
        out
    }

    fn texts_before(&self, k: usize, stamped: bool, out: &mut Vec<Token>) {
        if let Some((_, t)) = self.ghost.filter(|g| g.0 == k) {
            out.push(Token::Stamp(micros(t)));
        }
        let marker = self.marker.is_some_and(|(p, _)| p == k);
        if let Some((_, n)) = self.marker.filter(|_| marker) {
            out.push(Token::Marker(n));
        }
        let fragment = k == 0 || self.expected[k - 1] == b'\n' || marker;
        if stamped && fragment {
            out.push(Token::Stamp(micros(self.times[k])));
        }
    }
}

/// A time as a stamp says it: to the microsecond.
fn micros(t: Option<u64>) -> Option<u64> {
    t.map(|t| t / 1000 * 1000)
}

/// What a sink that opens is replayed, as the model works it out.
#[derive(Default)]
struct Replayed {
    bytes: Vec<u8>,
    times: Vec<Option<u64>>,
    head_len: usize,
    marker: Option<(usize, u64)>,
}

/// A piece of a line a stamped sink received: the stamp right before it
/// (if any) and its bytes. A piece starts at the first byte, after a
/// newline, after a marker and at a stamp; `after_gap`: at the first byte
/// or after a marker.
struct Fragment {
    /// The `Token::Stamp` right before it, if any.
    stamp: Option<Token>,
    bytes: Vec<u8>,
    after_gap: bool,
}

fn fragments(tokens: &[Token]) -> Vec<Fragment> {
    let mut out: Vec<Fragment> = Vec::new();
    let mut boundary = true;
    let mut gap = true;
    for &t in tokens {
        match t {
            Token::Stamp(_) => {
                out.push(Fragment {
                    stamp: Some(t),
                    bytes: Vec::new(),
                    after_gap: gap,
                });
                boundary = false;
            }
            Token::Marker(_) => {
                boundary = true;
                gap = true;
            }
            Token::Notice(_) => {}
            Token::Guest(b) => {
                if boundary {
                    out.push(Fragment {
                        stamp: None,
                        bytes: Vec::new(),
                        after_gap: gap,
                    });
                }
                gap = false;
                if let Some(f) = out.last_mut() {
                    f.bytes.push(b);
                }
                boundary = b == b'\n';
            }
        }
    }
    out
}

fn is_subsequence(small: &[u8], big: &[u8]) -> bool {
    let mut it = big.iter();
    small.iter().all(|b| it.any(|c| c == b))
}

/// Where the output stands in its line, as the model works it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line {
    /// The next byte starts a line.
    Start,
    /// The next byte continues a line that started at this time.
    In(Option<u64>),
}

impl Line {
    /// The time of the line a byte written at `wall` belongs to.
    fn time(self, wall: Option<u64>) -> Option<u64> {
        match self {
            Line::Start => wall,
            Line::In(t) => t,
        }
    }

    /// After byte `b`, of a line of time `t`.
    fn after(b: u8, t: Option<u64>) -> Line {
        if b == b'\n' {
            Line::Start
        } else {
            Line::In(t)
        }
    }
}

/// The wall clock of the `k`-th write: a second and a bit apart, so that
/// every stamp differs.
fn wall_of(k: u64) -> u64 {
    1_796_580_664_783_070_000 + k * 1_234_567_891
}

/// The frontend's offers, as [`MuxStats`] must count them.
#[derive(Default)]
struct Offers {
    offered: u64,
    accepted: u64,
    refused_bytes: u64,
    refusals: u64,
}

pub struct Model {
    mux: Mux,
    io: ScriptIo,
    /// Each slot's configuration (what the model needs of it).
    configs: Vec<SinkConfig>,
    /// Each slot's state, as the model works it out.
    life: Vec<Life>,
    /// The input source, as the model works it out.
    input: Option<usize>,
    cap: usize,
    replay: usize,
    /// The replay head's capacity, where it starts in `accepted` and how
    /// much it holds.
    head_cap: usize,
    head_start: usize,
    head_len: usize,
    accepted: Vec<u8>,
    /// The start time of the line each accepted byte belongs to.
    times: Vec<Option<u64>>,
    /// Where the output stands in its line.
    line: Line,
    /// Writes so far: each has its own wall clock.
    writes: u64,
    /// Whether a queue, the tail or the head holds more lines than their
    /// rings keep times for (then the oldest stamps may be unknown).
    forgetful: bool,
    conns: Vec<Conn>,
    waiting: bool,
    woken_seen: usize,
    coalesce: u64,
    now: u64,
    /// When output last went out at once or by a flush.
    last_out: Option<u64>,
    /// When held output must go out, if any is held: one window after the
    /// output before it.
    deadline: Option<u64>,
    offers: Offers,
    /// Per slot: a drop episode reported started and not yet stopped.
    dropping: Vec<bool>,
    /// Per slot: drop episodes reported started for the sink there now.
    episodes_reported: Vec<u64>,
    /// Entries of `io.failures` and `io.reports` already accounted for.
    failures_seen: usize,
    reports_seen: usize,
}

impl Model {
    /// A model around a new multiplexer built from `config` (which must be valid).
    pub fn new(config: Config) -> Model {
        let configs = config.sinks.clone();
        let (cap, replay) = (config.queue_capacity, config.replay_capacity);
        let head_cap = config.replay_head_capacity;
        // The documented number of times kept: all up to 64, else one per 8 bytes.
        let slots = |n: usize| n.min((n / 8).max(64));
        let forgetful = slots(cap) < cap || slots(replay) < replay || slots(head_cap) < head_cap;
        let coalesce = config.coalesce_ns;
        let input = config.input;
        let mut life = vec![Life::Vacant; MAX_SINKS];
        for (l, c) in life.iter_mut().zip(&configs) {
            *l = if c.open { Life::Open } else { Life::Closed };
        }
        let mut io = ScriptIo::new(MAX_SINKS);
        let mut mux = Mux::new(config).expect("valid configuration");
        pump(&mut mux, &mut io);
        let model = Model {
            mux,
            io,
            configs,
            life,
            input,
            cap,
            replay,
            head_cap,
            head_start: 0,
            head_len: 0,
            accepted: Vec::new(),
            times: Vec::new(),
            line: Line::Start,
            writes: 0,
            forgetful,
            conns: (0..MAX_SINKS).map(|_| Conn::default()).collect(),
            waiting: false,
            woken_seen: 0,
            coalesce,
            now: 0,
            last_out: None,
            deadline: None,
            offers: Offers::default(),
            dropping: vec![false; MAX_SINKS],
            episodes_reported: vec![0; MAX_SINKS],
            failures_seen: 0,
            reports_seen: 0,
        };
        model.check();
        model
    }

    fn stats(&self, i: usize) -> SinkStats {
        self.mux.stats(i).unwrap()
    }

    /// Slots in use or released.
    fn slots(&self) -> usize {
        self.configs.len()
    }

    /// Whether sink `i` gets new output now.
    fn receiving(&self, i: usize) -> bool {
        self.life[i] == Life::Open
    }

    /// The frontend's bytes sink `i` received on this connection (checked
    /// against what it received by [`Model::check_received`]).
    fn guest_received(&self, i: usize) -> usize {
        (self.stats(i).delivered - self.conns[i].delivered0) as usize
    }

    /// Bytes of the head part of its replay sink `i` has still to write.
    fn head_pending(&self, i: usize) -> usize {
        self.conns[i]
            .head_len
            .saturating_sub(self.guest_received(i))
    }

    /// Bytes waiting for a `Block` sink that is open or being detached, by
    /// the model's count: what it was offered and has not received.
    fn block_queued(&self, i: usize) -> usize {
        self.conns[i].expected.len() - self.guest_received(i)
    }

    /// Of those, the bytes in its queue (the head part of a replay is not).
    fn block_queue_len(&self, i: usize) -> usize {
        self.block_queued(i) - self.head_pending(i)
    }

    /// What [`Mux::write_room`] must say: the free space of the fullest open
    /// `Block` sink's queue, by the model's count.
    fn room(&self) -> usize {
        (0..self.slots())
            .filter(|&i| self.receiving(i) && self.configs[i].overflow == Overflow::Block)
            .map(|i| self.cap - self.block_queue_len(i))
            .min()
            .unwrap_or(usize::MAX)
    }

    /// Whether `len` bytes can be held without making room anywhere: every
    /// open sink has that much free, but a `drop` sink that is pushing
    /// back (watched), which drops its oldest bytes as it would anyway.
    fn fits(&self, len: usize) -> bool {
        (0..self.slots()).filter(|&i| self.receiving(i)).all(|i| {
            let free = match self.configs[i].overflow {
                Overflow::Block => self.cap - self.block_queue_len(i),
                Overflow::Drop => self.cap - (self.stats(i).queued as usize - self.head_pending(i)),
            };
            free >= len || (self.configs[i].overflow == Overflow::Drop && self.io.watching[i])
        })
    }

    /// Applies `op` and checks every invariant.
    pub fn step(&mut self, op: Op) {
        let n = self.slots();
        assert_eq!(self.mux.sink_count(), n);
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
        if let Some(i) = target.filter(|&i| self.life[i] == Life::Vacant) {
            self.refused_everywhere(i);
            self.check();
            return;
        }
        let detached_before: Vec<bool> = self.life.iter().map(|&l| l == Life::Detached).collect();
        match op {
            Op::Write(len) | Op::WriteNow(len) => self.write(len, matches!(op, Op::Write(_))),
            Op::Advance(dt) => {
                self.now += dt;
                if self.deadline.is_some_and(|d| d <= self.now) {
                    self.flush();
                }
            }
            Op::Flush => self.flush(),
            Op::Behave(i, b) => self.io.behaviour[i % MAX_SINKS] = b,
            Op::Writable(i) => {
                driven(&mut self.mux, &mut self.io, |m| m.sink_writable(i % n)).unwrap();
            }
            Op::Open(i) => self.open(i % n),
            Op::Close(i) => self.close(i % n),
            Op::SetInput(sink) => self.set_input(sink.map(|i| i % n)),
            Op::Attach { config, input } => self.attach(config, input),
            Op::Detach(i) => self.detach(i % n, false),
            Op::Release(i) => self.detach(i % n, true),
            Op::Input(i, len, room) => self.input(i % n, len, room),
            Op::ResetHead => self.reset_head(),
            Op::Migrate => self.migrate(),
            Op::Break(i) => {
                let i = i % n;
                let before = self.io.events.len();
                driven(&mut self.mux, &mut self.io, |m| {
                    m.sink_event(i, SinkEvent::Break)
                })
                .unwrap();
                let forwarded = self.io.events.len() - before;
                assert_eq!(forwarded, usize::from(self.input == Some(i)));
                self.io.events.truncate(before);
            }
        }
        self.after_pump(&detached_before);
        if self.io.frontend_writable != self.woken_seen {
            assert!(self.waiting, "woken without having been turned away");
            assert!(self.room() > 0);
            self.woken_seen = self.io.frontend_writable;
            self.waiting = false;
        }
        self.check();
    }

    /// Every call that names the released slot `i` is refused.
    fn refused_everywhere(&mut self, i: usize) {
        let m = &mut self.mux;
        assert_eq!(m.sink_writable(i), Err(NoSuchSink(i)));
        assert_eq!(m.sink_event(i, SinkEvent::Opened), Err(NoSuchSink(i)));
        assert_eq!(m.input(i, 1, 1), Err(NoSuchSink(i)));
        assert_eq!(m.input_room(i, 1), Err(NoSuchSink(i)));
        assert_eq!(m.set_input(Some(i)), Err(NoSuchSink(i)));
        assert_eq!(m.detach(i), Err(DetachError::NoSuchSink(i)));
        assert_eq!(m.release(i), Err(DetachError::NoSuchSink(i)));
        assert_eq!(
            m.transmitted(i, WriteOutcome::Written(1)),
            Err(TransmitError::NoSuchSink(i))
        );
        assert_eq!(m.sink_state(i), Err(NoSuchSink(i)));
        assert_eq!(m.stats(i), Err(NoSuchSink(i)));
    }

    /// The frontend offers `len` bytes of the stream.
    fn write(&mut self, len: usize, at: bool) {
        let n = self.slots();
        let coalescing = at && self.coalesce > 0;
        let room = self.room();
        let most = len.min(self.cap);
        let now = self.now;
        let write_now = if room == 0 {
            Err(WouldBlock)
        } else {
            Ok(most.min(room))
        };
        let want = if !coalescing {
            // Held output is released first; the deadline goes with it.
            self.deadline = None;
            write_now
        } else if self.deadline.is_none()
            && self
                .last_out
                .is_none_or(|t| now.saturating_sub(t) >= self.coalesce)
        {
            // Quiet for a whole window: out at once.
            self.last_out = Some(now);
            write_now
        } else if self.fits(most) {
            // Held until one window after the output before it.
            let last = self.last_out.expect("held output follows output");
            self.deadline.get_or_insert(last + self.coalesce);
            Ok(most)
        } else {
            // No room to hold it: what is held goes out first.
            if self.deadline.take().is_some() {
                self.last_out = Some(now);
            }
            write_now
        };
        let open: Vec<bool> = (0..n).map(|i| self.receiving(i)).collect();
        let data = stream(self.accepted.len(), len);
        let wall = at.then(|| wall_of(self.writes));
        self.writes += 1;
        let r = driven(&mut self.mux, &mut self.io, |m| {
            if at {
                m.write_at_wall(&data, now, wall.unwrap_or(u64::MAX))
            } else {
                m.write(&data)
            }
        });
        assert_eq!(r, want, "write of {len} with room {room}");
        let k = r.unwrap_or(0);
        self.offers.offered += len as u64;
        self.offers.accepted += k as u64;
        if k < len {
            self.offers.refusals += 1;
            self.offers.refused_bytes += (len - k) as u64;
        }
        if r.is_err() {
            self.waiting = true;
        }
        let from = self.accepted.len();
        self.take(&data[..k], wall);
        for i in (0..n).filter(|&i| open[i]) {
            self.conns[i].expected.extend_from_slice(&data[..k]);
            self.conns[i].times.extend_from_slice(&self.times[from..]);
        }
    }

    /// Output accepted at `wall`: its lines' times, the head.
    fn take(&mut self, data: &[u8], wall: Option<u64>) {
        let at = self.accepted.len();
        for &b in data {
            let t = self.line.time(wall);
            self.times.push(t);
            self.line = Line::after(b, t);
        }
        if self.head_start + self.head_len == at {
            self.head_len += data.len().min(self.head_cap - self.head_len);
        }
        self.accepted.extend_from_slice(data);
    }

    fn open(&mut self, i: usize) {
        let before = self.stats(i);
        if matches!(self.life[i], Life::Closed | Life::Failed) {
            // A new connection: what the old one received is history.
            self.io.received[i].clear();
            self.conns[i] = Conn::starting(self.replayed(), &before);
            self.life[i] = Life::Open;
        }
        driven(&mut self.mux, &mut self.io, |m| {
            m.sink_event(i, SinkEvent::Opened)
        })
        .unwrap();
    }

    fn close(&mut self, i: usize) {
        let was = self.life[i];
        self.life[i] = match was {
            Life::Open | Life::Failed => Life::Closed,
            Life::Detaching => Life::Detached,
            l => l,
        };
        driven(&mut self.mux, &mut self.io, |m| {
            m.sink_event(i, SinkEvent::Closed)
        })
        .unwrap();
        if self.life[i] == Life::Closed {
            // What the connection received is history.
            self.io.received[i].clear();
            self.conns[i] = Conn::starting(Replayed::default(), &self.stats(i));
        }
    }

    fn set_input(&mut self, sink: Option<usize>) {
        let events = self.io.events.len();
        let r = driven(&mut self.mux, &mut self.io, |m| m.set_input(sink));
        match sink {
            Some(i) if !self.life[i].attached() => {
                assert_eq!(
                    r,
                    Err(NoSuchSink(i)),
                    "a sink on its way out became the input"
                );
            }
            _ => {
                r.unwrap();
                self.input = sink;
            }
        }
        assert_eq!(
            self.io.events.len(),
            events,
            "moving the input flapped the frontend"
        );
    }

    fn attach(&mut self, config: SinkConfig, input: bool) {
        let n = self.slots();
        let free = (0..n).find(|&i| self.life[i] == Life::Vacant);
        let was_open = self.mux.frontend_open();
        if let Some(i) = free.or_else(|| (n < MAX_SINKS).then_some(n)) {
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
                self.life[i] = if config.open {
                    Life::Open
                } else {
                    Life::Closed
                };
                self.dropping[i] = false;
                self.episodes_reported[i] = 0;
                // A new sink's counters start at 0; the replay is
                // part of what it is offered.
                let replayed = if config.open {
                    self.replayed()
                } else {
                    Replayed::default()
                };
                self.conns[i] = Conn::starting(replayed, &SinkStats::default());
                if config.open && !was_open {
                    assert!(self.mux.frontend_open());
                }
                if input {
                    driven(&mut self.mux, &mut self.io, |m| m.set_input(Some(i))).unwrap();
                    self.input = Some(i);
                }
            }
            (r, w) => panic!("attach {config:?}: got {r:?}, want {w:?}"),
        }
    }

    /// [`Mux::detach`], or [`Mux::release`] if `release`.
    fn detach(&mut self, i: usize, release: bool) {
        let n = self.slots();
        let others = (0..n)
            .filter(|&k| k != i && self.life[k].attached())
            .count();
        let attached = self.life[i].attached();
        let queued = if self.configs[i].overflow == Overflow::Block && self.life[i] == Life::Open {
            self.block_queued(i)
        } else {
            0
        };
        let r = driven(&mut self.mux, &mut self.io, |m| {
            if release {
                m.release(i).map(|st| st.queued as usize)
            } else {
                m.detach(i)
            }
        });
        if others == 0 && attached {
            assert_eq!(r, Err(DetachError::LastSink(i)));
            return;
        }
        let left = r.unwrap();
        if attached {
            if self.input == Some(i) {
                self.input = None;
            }
            // Only a connected `block` sink with a backlog goes on writing.
            self.life[i] = if queued > 0 {
                Life::Detaching
            } else {
                Life::Detached
            };
        }
        if release {
            assert_eq!(left, 0, "released with bytes still queued");
            self.life[i] = Life::Vacant;
            self.io.received[i].clear();
            self.conns[i] = Conn::default();
        } else {
            let st = self.stats(i);
            assert_eq!(left as u64, st.queued);
            if self.configs[i].overflow == Overflow::Drop {
                assert_eq!(st.queued, 0, "a drop sink kept its queue");
            }
        }
    }

    fn input(&mut self, i: usize, len: usize, room: usize) {
        let before = self.io.input.len();
        let data = stream(1_000_000 + before, len);
        let used = driven(&mut self.mux, &mut self.io, |m| m.input(i, len, room)).unwrap();
        self.io.input.extend_from_slice(&data[..used]);
        if self.input == Some(i) {
            assert!(self.life[i].attached());
            assert_eq!(used, len.min(room));
            assert_eq!(&self.io.input[before..], &data[..used]);
            if used > 0 {
                // Typing flushes held output; the echo goes out at once.
                self.deadline = None;
                self.last_out = None;
            }
        } else {
            assert_eq!(used, 0);
        }
    }

    /// What the scripted sinks did during the pump: failures fail (or
    /// detach) their sink, a sink being detached that wrote out its queue
    /// is detached; then the reports must say exactly that.
    fn after_pump(&mut self, detached_before: &[bool]) {
        let failures = self.io.failures[self.failures_seen..].to_vec();
        self.failures_seen = self.io.failures.len();
        for &(i, _) in &failures {
            self.life[i] = match self.life[i] {
                Life::Open => Life::Failed,
                Life::Detaching => Life::Detached,
                l => panic!("sink {i} failed a write while {l:?}"),
            };
        }
        for i in 0..self.slots() {
            if self.life[i] == Life::Detaching && self.block_queued(i) == 0 {
                self.life[i] = Life::Detached;
            }
        }
        let reports = self.io.reports[self.reports_seen..].to_vec();
        self.reports_seen = self.io.reports.len();
        let mut failed = Vec::new();
        let mut detached = Vec::new();
        for r in reports {
            match r {
                SinkReport::Failed { sink, errno } => failed.push((sink, errno)),
                SinkReport::Detached { sink } => detached.push(sink),
                SinkReport::DropStarted {
                    sink,
                    unit,
                    dropped,
                } => {
                    assert!(!self.dropping[sink], "sink {sink}: started dropping twice");
                    assert_eq!(self.configs[sink].overflow, Overflow::Drop);
                    assert_eq!(Some(unit), Some(self.configs[sink].drop_unit));
                    assert!(dropped > 0);
                    if self.life[sink] != Life::Vacant {
                        assert!(dropped <= self.stats(sink).dropped);
                    }
                    self.dropping[sink] = true;
                    self.episodes_reported[sink] += 1;
                }
                SinkReport::DropStopped {
                    sink,
                    episode,
                    dropped,
                } => {
                    assert!(self.dropping[sink], "sink {sink}: stopped, never started");
                    assert!(episode > 0 && episode <= dropped);
                    self.dropping[sink] = false;
                }
            }
        }
        assert_eq!(failed, failures, "a failure reported not once");
        let newly: Vec<usize> = (0..self.slots())
            .filter(|&i| self.life[i] == Life::Detached && !detached_before[i])
            .collect();
        let mut reported = detached.clone();
        reported.sort_unstable();
        reported.dedup();
        assert_eq!(reported.len(), detached.len(), "a detach reported twice");
        for &i in &detached {
            assert!(!detached_before[i], "sink {i}: detached twice");
        }
        assert_eq!(reported, newly, "finished detaches and their reports");
        for i in 0..self.slots() {
            if self.life[i] != Life::Open {
                assert!(
                    !self.dropping[i],
                    "sink {i} ({:?}) still dropping",
                    self.life[i]
                );
            }
        }
    }

    /// What a sink that opens now is replayed: the union of the head and
    /// the tail, in order, with a marker for the gap between them.
    fn replayed(&self) -> Replayed {
        let written = self.accepted.len();
        let ts = written - written.min(self.replay);
        let (hs, he) = (self.head_start, self.head_start + self.head_len);
        let part = |from: usize| Replayed {
            bytes: self.accepted[from..].to_vec(),
            times: self.times[from..].to_vec(),
            head_len: 0,
            marker: None,
        };
        if self.head_len == 0 || ts <= hs {
            part(ts)
        } else if ts <= he {
            Replayed {
                head_len: ts - hs,
                ..part(hs)
            }
        } else {
            let mut r = part(ts);
            r.bytes.splice(0..0, self.accepted[hs..he].iter().copied());
            r.times.splice(0..0, self.times[hs..he].iter().copied());
            r.head_len = he - hs;
            r.marker = Some((he - hs, (ts - he) as u64));
            r
        }
    }

    /// [`Mux::reset_head`]: sinks still being written the head part of a
    /// replay lose the rest of it, and the head starts again.
    fn reset_head(&mut self) {
        for i in 0..self.slots() {
            if !matches!(self.life[i], Life::Open | Life::Detaching) {
                continue;
            }
            let got = self.guest_received(i);
            if got >= self.conns[i].head_len {
                continue;
            }
            let st = self.stats(i);
            let last = self.received_tokens(i).last().copied();
            let conn = &mut self.conns[i];
            let cut = conn.head_len - got;
            if (st.stamp_bytes - conn.stamp_bytes0) % 28 != 0
                || matches!(last, Some(Token::Stamp(_)))
            {
                // The stamp of the head's line at `got` was written, or is
                // being written (and is finished): it stays.
                conn.ghost = Some((got, conn.times[got]));
            }
            conn.cut = true;
            conn.expected.drain(got..conn.head_len);
            conn.times.drain(got..conn.head_len);
            // What is cut off is skipped: the marker (now, if there was to
            // be none) says so.
            conn.marker = Some((got, cut as u64 + conn.marker.map_or(0, |m| m.1)));
            conn.head_len = got;
            // Offered, and dropped: counted as such from now on.
            conn.offered0 += cut as u64;
            conn.dropped0 += cut as u64;
        }
        driven(&mut self.mux, &mut self.io, Mux::reset_head);
        self.head_start = self.accepted.len();
        self.head_len = 0;
    }

    /// The replay state moves to a new multiplexer: exported, imported
    /// there (and exported again, the same), a stamped and an unstamped
    /// sink that open there are replayed what they would be here, and the
    /// next output goes on with this one's lines.
    fn migrate(&self) {
        let mut blob = vec![0u8; self.mux.replay_export_len()];
        assert_eq!(self.mux.replay_export(&mut blob), Some(blob.len()));
        let config = Config {
            sinks: vec![SinkConfig::new(Overflow::Block, false)],
            input: None,
            queue_capacity: self.cap,
            replay_capacity: self.replay,
            replay_head_capacity: self.head_cap,
            coalesce_ns: 0,
        };
        let mut dest = Mux::new(config).expect("valid configuration");
        dest.replay_import(&blob).expect("a blob from export");
        let mut again = vec![0u8; dest.replay_export_len()];
        assert_eq!(dest.replay_export(&mut again), Some(again.len()));
        assert_eq!(again, blob, "export after import is not the same blob");
        // Once there is output, it is no longer fresh.
        let twice = if self.accepted.is_empty() {
            Ok(())
        } else {
            Err(ImportError::NotFresh)
        };
        assert_eq!(dest.replay_import(&blob), twice, "imported twice");
        let mut io = ScriptIo::new(MAX_SINKS);
        let mut sinks = Vec::new();
        for stamped in [false, true] {
            let viewer = SinkConfig {
                timestamp: stamped,
                ..SinkConfig::new(Overflow::Block, true)
            };
            sinks.push(driven(&mut dest, &mut io, |m| m.attach(viewer)).unwrap());
        }
        // Output on the destination continues the lines of this one.
        let data = stream(self.accepted.len(), self.cap.min(9));
        let wall = wall_of(self.writes);
        let mut replayed = Conn::starting(self.replayed(), &SinkStats::default());
        let mut line = self.line;
        for &b in &data {
            let t = line.time(Some(wall));
            replayed.times.push(t);
            line = Line::after(b, t);
        }
        replayed.expected.extend_from_slice(&data);
        let r = driven(&mut dest, &mut io, |m| m.write_at_wall(&data, 0, wall));
        assert_eq!(r, Ok(data.len()));
        for (k, stamped) in [false, true].into_iter().enumerate() {
            let got = parse(&io.received[sinks[k]], stamped, usize::MAX);
            let want = replayed.render(stamped);
            let same = got.len() == want.len()
                && got
                    .iter()
                    .zip(&want)
                    .all(|(&g, &w)| agree(g, w, self.forgetful));
            assert!(
                same,
                "migrated replay (stamped: {stamped}): got {got:?}, want {want:?}"
            );
        }
    }

    fn flush(&mut self) {
        let now = self.now;
        driven(&mut self.mux, &mut self.io, |m| m.handle_timeout(now));
        if self.deadline.take().is_some() {
            self.last_out = Some(now);
        }
    }

    /// Checks the invariants that hold after every step.
    pub fn check(&self) {
        self.check_frontend();
        let mut connected = false;
        for i in 0..self.slots() {
            let life = self.life[i];
            assert_eq!(self.mux.sink_state(i).ok(), life.state(), "sink {i}");
            if life == Life::Vacant {
                assert!(!self.io.watching[i], "released sink {i} still watched");
                continue;
            }
            connected |= life.connected();
            self.check_counters(i);
            if life != Life::Closed {
                self.check_received(i);
            }
        }
        assert_eq!(self.mux.frontend_open(), connected);
    }

    /// The deadline, the room for a write, the input and the offers.
    fn check_frontend(&self) {
        assert_eq!(
            self.mux.poll_timeout(),
            self.deadline,
            "the deadline (now {})",
            self.now
        );
        if let Some(d) = self.deadline {
            assert!(d >= self.now, "the timer missed the deadline");
        }
        assert_eq!(self.mux.write_room(), self.room(), "the room for a write");
        assert_eq!(self.mux.input_source(), self.input);
        let ms = self.mux.mux_stats();
        assert_eq!(
            (
                ms.frontend_offered,
                ms.frontend_accepted,
                ms.frontend_refused_bytes,
                ms.frontend_refusals,
                ms.reports_lost
            ),
            (
                self.offers.offered,
                self.offers.accepted,
                self.offers.refused_bytes,
                self.offers.refusals,
                0
            )
        );
    }

    /// Sink `i`'s counters agree with each other and with its configuration.
    fn check_counters(&self, i: usize) {
        let (st, cfg, life) = (self.stats(i), self.configs[i], self.life[i]);
        assert_eq!(
            st.offered,
            st.delivered + st.queued + st.dropped,
            "sink {i}"
        );
        assert_eq!(self.mux.overflow(i), Ok(cfg.overflow));
        assert_eq!(st.drop_episodes, self.episodes_reported[i], "sink {i}");
        if !cfg.drop_notice {
            assert_eq!(
                (st.notices, st.notice_bytes),
                (0, 0),
                "sink {i}: unasked notice"
            );
        }
        if !cfg.timestamp {
            assert_eq!(
                (st.stamps, st.stamp_bytes),
                (0, 0),
                "sink {i}: unasked stamps"
            );
        }
        assert!(st.stamp_bytes >= 28 * st.stamps && st.stamp_bytes < 28 * (st.stamps + 1) + 28);
        if self.head_cap == 0 {
            assert_eq!(
                (st.skip_markers, st.skip_marker_bytes),
                (0, 0),
                "sink {i}: no head, yet a marker"
            );
        }
        // Whole-line drops and stamps search each byte a bounded number of
        // times (issue 17, item 1); nothing else searches at all.
        let scanned = self.mux.scanned_bytes(i).unwrap();
        let lines = cfg.overflow == Overflow::Drop && cfg.drop_unit == DropUnit::Lines;
        if lines || cfg.timestamp {
            let bound = 5 * u64::from(lines) + 4 * u64::from(cfg.timestamp);
            assert!(
                scanned <= bound * st.offered,
                "sink {i}: {scanned} bytes searched for {} offered",
                st.offered
            );
        } else {
            assert_eq!(scanned, 0, "sink {i} searched for newlines");
        }
        if matches!(life, Life::Closed | Life::Detached) {
            assert_eq!(st.queued, 0, "sink {i} ({life:?}) has a queue");
        }
        if life == Life::Closed {
            assert!(self.io.received[i].is_empty());
        }
        if self.io.watching[i] {
            // (or with a notice, a stamp or a marker to write)
            assert!(
                st.queued > 0 || cfg.drop_notice || cfg.timestamp || self.head_cap > 0,
                "sink {i} watched with an empty queue"
            );
        } else if st.queued > 0 {
            assert!(
                self.deadline.is_some(),
                "sink {i}: queued bytes nobody will flush"
            );
        }
    }

    /// What sink `i` received on this connection, as tokens; checks that
    /// every byte written to it is counted once, in the right counter.
    fn received_tokens(&self, i: usize) -> Vec<Token> {
        let (st, cfg, conn) = (self.stats(i), self.configs[i], &self.conns[i]);
        let got = &self.io.received[i];
        let delivered = st.delivered - conn.delivered0;
        let (stamps, stamp_bytes) = (st.stamps - conn.stamps0, st.stamp_bytes - conn.stamp_bytes0);
        let (notices, notice_bytes) = (
            st.notices - conn.notices0,
            st.notice_bytes - conn.notice_bytes0,
        );
        let (markers, marker_bytes) = (
            st.skip_markers - conn.markers0,
            st.skip_marker_bytes - conn.marker_bytes0,
        );
        assert_eq!(
            got.len() as u64,
            delivered + stamp_bytes + notice_bytes + marker_bytes,
            "sink {i}: written bytes not counted once: {st:?}"
        );
        // What is not whole yet is at the end: the rest of the bytes the
        // frontend's and the complete texts do not account for.
        let tokens = parse(got, cfg.timestamp, delivered as usize);
        let count = |f: fn(&Token) -> bool| tokens.iter().filter(|t| f(t)).count() as u64;
        assert_eq!(
            count(|t| matches!(t, Token::Guest(_))),
            delivered,
            "sink {i}"
        );
        assert_eq!(
            count(|t| matches!(t, Token::Stamp(_))),
            stamps,
            "sink {i}: stamps"
        );
        assert_eq!(
            count(|t| matches!(t, Token::Notice(_))),
            notices,
            "sink {i}: notices"
        );
        assert_eq!(
            count(|t| matches!(t, Token::Marker(_))),
            markers,
            "sink {i}: markers"
        );
        let whole = len_of(&tokens) as u64;
        assert!(
            got.len() as u64 - whole < 64,
            "sink {i}: more unfinished text than one"
        );
        tokens
    }

    /// What sink `i` received on its connection is what it must have.
    fn check_received(&self, i: usize) {
        let (st, cfg, life) = (self.stats(i), self.configs[i], self.life[i]);
        let conn = &self.conns[i];
        let tokens = self.received_tokens(i);
        let got = guest(&tokens);
        match (life, cfg.overflow) {
            (Life::Open | Life::Detaching, Overflow::Block) => {
                assert_eq!(st.dropped, conn.dropped0, "block sink {i} lost bytes");
                let want = conn.render_upto(cfg.timestamp, tokens.len());
                let prefix = tokens.len() <= want.len()
                    && tokens
                        .iter()
                        .zip(&want)
                        .all(|(&g, &w)| agree(g, w, self.forgetful));
                assert!(prefix, "block sink {i}: got {tokens:?}, want {want:?}");
                assert_eq!(got.len() as u64 + st.queued, conn.expected.len() as u64);
            }
            (Life::Open, Overflow::Drop) => {
                assert_eq!(st.offered - conn.offered0, conn.expected.len() as u64);
                assert!(is_subsequence(&got, &conn.expected), "drop sink {i}");
                let lines = cfg.drop_unit == DropUnit::Lines && self.cap >= MAX_LINE;
                if lines || cfg.timestamp {
                    self.check_pieces(i, &tokens, lines, cfg.timestamp);
                }
            }
            (_, _) => assert!(is_subsequence(&got, &conn.expected), "sink {i} ({life:?})"),
        }
    }

    /// A `Drop` sink in lines mode, or a stamped one: each piece of a line
    /// it received can be placed in the stream, in order. In lines mode a
    /// piece is contiguous and starts a line (unless it follows a marker
    /// or is the connection's first): whole lines in order, a line never
    /// spliced onto another. Stamped: every piece comes right after a
    /// stamp of its line's time, and lies within that one line; in lines
    /// mode a stamp is always followed by its line.
    fn check_pieces(&self, i: usize, tokens: &[Token], lines: bool, stamped: bool) {
        let conn = &self.conns[i];
        let want = &conn.expected;
        let frags = fragments(tokens);
        let mut pos = 0;
        for (k, f) in frags.iter().enumerate() {
            let stamp = match f.stamp {
                Some(Token::Stamp(t)) => Some(t),
                Some(_) => unreachable!("only stamps start a piece"),
                None if !stamped => None,
                None => {
                    assert!(
                        f.bytes.is_empty(),
                        "sink {i}: a piece of a line without its stamp: {tokens:?}"
                    );
                    continue;
                }
            };
            if f.bytes.is_empty() {
                // (A cut head replay may leave the stamp of its next line alone.)
                assert!(
                    !lines || k + 1 == frags.len() || conn.cut,
                    "sink {i}: a stamp without its line: {tokens:?}"
                );
                continue;
            }
            let fits = |q: usize| -> Option<usize> {
                let timed = stamp.is_none_or(|t| {
                    agree(
                        Token::Stamp(t),
                        Token::Stamp(micros(conn.times[q])),
                        self.forgetful,
                    )
                });
                if !timed || want[q] != f.bytes[0] {
                    return None;
                }
                if lines {
                    let starts = f.after_gap || q == 0 || want[q - 1] == b'\n';
                    return (starts && want[q..].starts_with(&f.bytes)).then(|| q + f.bytes.len());
                }
                // The rest within the same line.
                let mut at = q + 1;
                for &b in &f.bytes[1..] {
                    let r = want[at..].iter().position(|&c| c == b)?;
                    if want[at - 1..at + r].contains(&b'\n') {
                        return None;
                    }
                    at += r + 1;
                }
                Some(at)
            };
            match (pos..want.len()).find_map(fits) {
                Some(end) => pos = end,
                None => panic!(
                    "sink {i}: piece {k} {:?} (stamp {stamp:?}) is no part of a line (of that time) \
                     after {pos}: {tokens:?}, stream {want:?}",
                    String::from_utf8_lossy(&f.bytes)
                ),
            }
        }
    }

    /// Lets every sink drain and checks the end-of-run promises.
    pub fn drain(&mut self) {
        if let Some(d) = self.deadline {
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
            assert_ne!(
                self.life[i],
                Life::Detaching,
                "sink {i} never finished detaching"
            );
            if self.life[i] != Life::Open {
                continue;
            }
            let st = self.stats(i);
            let cfg = self.configs[i];
            let conn = &self.conns[i];
            let tokens = self.received_tokens(i);
            let got = guest(&tokens);
            let want = &conn.expected;
            assert_eq!(st.queued, 0, "sink {i} did not drain");
            match (cfg.overflow, cfg.drop_unit) {
                (Overflow::Block, _) => {
                    let all = conn.render(cfg.timestamp);
                    let same = tokens.len() == all.len()
                        && tokens
                            .iter()
                            .zip(&all)
                            .all(|(&g, &w)| agree(g, w, self.forgetful));
                    assert!(same, "block sink {i}: got {tokens:?}, want {all:?}");
                }
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
