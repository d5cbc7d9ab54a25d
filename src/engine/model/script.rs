//! A scripted [`Io`]: each sink takes what its current behaviour allows.
//! Driven by [`crate::engine::pump`]; input for the frontend is collected by
//! the caller, which gets its length from [`crate::engine::Mux::input`].

use crate::engine::{pump, FrontendEvent, Io, Mux, SinkReport, WriteOutcome};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Takes everything.
    Open,
    /// Takes nothing (EAGAIN).
    Stalled,
    /// Takes at most this many bytes per write (0 behaves like `Stalled`).
    Partial(usize),
    /// Takes this many more bytes in all, then stalls.
    Budget(usize),
    /// The next write fails with this errno, later ones take everything.
    FailOnce(i32),
}

#[derive(Debug)]
pub struct ScriptIo {
    pub behaviour: Vec<Behaviour>,
    /// What each sink received since the test last cleared it.
    pub received: Vec<Vec<u8>>,
    pub watching: Vec<bool>,
    /// How many write calls each sink got (including refused ones).
    pub writes: Vec<usize>,
    pub frontend_writable: usize,
    pub input: Vec<u8>,
    pub events: Vec<FrontendEvent>,
    /// (sink, errno) of every write this made fail, in order.
    pub failures: Vec<(usize, i32)>,
    /// Every sink report, in order.
    pub reports: Vec<SinkReport>,
}

impl ScriptIo {
    pub fn new(n: usize) -> Self {
        ScriptIo {
            behaviour: vec![Behaviour::Open; n],
            received: vec![Vec::new(); n],
            watching: vec![false; n],
            writes: vec![0; n],
            frontend_writable: 0,
            input: Vec::new(),
            events: Vec::new(),
            failures: Vec::new(),
            reports: Vec::new(),
        }
    }
}

impl Io for ScriptIo {
    fn write(&mut self, sink: usize, data: &[u8]) -> WriteOutcome {
        assert!(!data.is_empty(), "engine wrote an empty buffer");
        self.writes[sink] += 1;
        let n = match self.behaviour[sink] {
            Behaviour::Open => data.len(),
            Behaviour::Stalled | Behaviour::Partial(0) => return WriteOutcome::WouldBlock,
            Behaviour::Partial(k) => k.min(data.len()),
            Behaviour::Budget(0) => return WriteOutcome::WouldBlock,
            Behaviour::Budget(k) => {
                let n = k.min(data.len());
                self.behaviour[sink] = Behaviour::Budget(k - n);
                n
            }
            Behaviour::FailOnce(errno) => {
                self.behaviour[sink] = Behaviour::Open;
                self.failures.push((sink, errno));
                return WriteOutcome::Failed(errno);
            }
        };
        self.received[sink].extend_from_slice(&data[..n]);
        WriteOutcome::Written(n)
    }

    fn is_watching(&self, sink: usize) -> bool {
        self.watching[sink]
    }

    fn watch_writable(&mut self, sink: usize, enable: bool) {
        assert_ne!(self.watching[sink], enable, "redundant watch change");
        self.watching[sink] = enable;
    }

    fn frontend_writable(&mut self) {
        self.frontend_writable += 1;
    }

    fn frontend_event(&mut self, event: FrontendEvent) {
        self.events.push(event);
    }

    fn sink_report(&mut self, report: SinkReport) {
        self.reports.push(report);
    }
}

/// Longest line of [`stream`], newline included.
pub const MAX_LINE: usize = 8;

/// A stream whose bytes depend on their position, so a gap or repeat shows.
/// About one byte in five is a newline, and no line is longer than
/// [`MAX_LINE`] bytes, so that dropping whole lines can be checked.
pub fn stream(start: usize, len: usize) -> Vec<u8> {
    (start..start + len)
        .map(|k| {
            let b = (k as u32).wrapping_mul(2_654_435_761).rotate_left(7) as u8;
            if b % 5 == 0 || k % MAX_LINE == MAX_LINE - 1 {
                b'\n'
            } else if b == b'\n' {
                b'\n' + 1
            } else {
                b
            }
        })
        .collect()
}

/// Runs `f` on the multiplexer, then carries out what it asks for against `io`.
pub fn driven<T>(mux: &mut Mux, io: &mut ScriptIo, f: impl FnOnce(&mut Mux) -> T) -> T {
    let r = f(mux);
    pump(mux, io);
    r
}
