//! Line timestamps: the wall clock, the stamp text, the short texts the
//! engine writes besides the guest's bytes, and the ring of line-start
//! times that a queue (or the replay history) keeps.
//!
//! A line is the bytes up to and including a `\n`. Every line a stamped
//! sink receives starts with the UTC wall-clock time at which its first
//! byte came from the frontend, formatted as QEMU's `-msg timestamp=on`
//! formats it: `YYYY-MM-DDTHH:MM:SS.uuuuuuZ ` (27 characters and a space).
//! The engine makes no system calls: the caller passes the wall clock with
//! each write ([`Mux::write_at_wall`](super::Mux::write_at_wall)).
//!
//! The times of the lines waiting in a queue are kept in a [`TimeRing`],
//! one per newline that has a byte after it in the queue (the time of the
//! line that byte starts), in order; the line at the front of the queue
//! has its own state. Their positions are not stored: the k-th time
//! belongs to the byte after the k-th newline.

use std::collections::{TryReserveError, VecDeque};
use std::io::Write as _;

/// Bytes of one stamp: `2026-12-06T18:11:04.783070Z `.
pub const STAMP_LEN: usize = 28;

/// What a stamp says when the time is not known: a write without a wall
/// clock ([`Mux::write`](super::Mux::write), [`Mux::write_at`](super::Mux::write_at)),
/// or a line whose time a full [`TimeRing`] forgot.
pub const UNKNOWN_STAMP: &[u8; STAMP_LEN] = b"????-??-??T??:??:??.??????Z ";

/// Wall-clock time, in nanoseconds since the Unix epoch (UTC), or unknown.
/// `u64::MAX` (2554-07-21T23:34:33.709551615Z) is reserved to mean unknown.
/// (The engine's own: not part of the C header.)
///
/// cbindgen:ignore
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wall(u64);

/// cbindgen:ignore
impl Wall {
    /// The time is not known.
    pub const UNKNOWN: Wall = Wall(u64::MAX);

    /// `ns` nanoseconds since the Unix epoch; `u64::MAX` is [`Wall::UNKNOWN`].
    pub const fn from_ns(ns: u64) -> Wall {
        Wall(ns)
    }

    /// Nanoseconds since the Unix epoch, or `u64::MAX` when unknown.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// Nanoseconds since the Unix epoch, if known.
    pub const fn ns(self) -> Option<u64> {
        if self.0 == u64::MAX {
            None
        } else {
            Some(self.0)
        }
    }
}

/// The date of `days` days after 1970-01-01, as (year, month, day), by
/// Howard Hinnant's `civil_from_days` (for days >= 0, so unsigned).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March first
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let y = era * 400 + yoe + u64::from(m <= 2);
    (y, m, d)
}

/// The stamp of a line that started at `wall_ns` (nanoseconds since the
/// Unix epoch, UTC): `YYYY-MM-DDTHH:MM:SS.uuuuuuZ ` (microseconds,
/// truncated), or [`UNKNOWN_STAMP`] for `u64::MAX` (unknown).
pub fn format_stamp(wall_ns: u64) -> [u8; STAMP_LEN] {
    let Some(ns) = Wall::from_ns(wall_ns).ns() else {
        return *UNKNOWN_STAMP;
    };
    let secs = ns / 1_000_000_000;
    let micros = ns % 1_000_000_000 / 1000;
    let (y, mo, d) = civil_from_days(secs / 86_400);
    let sod = secs % 86_400;
    // By hand rather than with `write!`: this runs once per line.
    let mut out = *b"0000-00-00T00:00:00.000000Z ";
    for (at, width, v) in [
        (0, 4, y),
        (5, 2, mo),
        (8, 2, d),
        (11, 2, sod / 3600),
        (14, 2, sod / 60 % 60),
        (17, 2, sod % 60),
        (20, 6, micros),
    ] {
        let mut v = v;
        for b in out[at..at + width].iter_mut().rev() {
            *b = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    out
}

/// Longest [`Text`]: `\r\n[multiplex: ` + 20 digits + ` bytes dropped]\r\n`.
const TEXT_MAX: usize = 64;

/// A short text the engine writes to a sink besides the guest's bytes (a
/// stamp, a drop notice, a skip marker), and how much of it the sink took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Text {
    buf: [u8; TEXT_MAX],
    len: u8,
    pos: u8,
}

impl Text {
    fn from_bytes(bytes: &[u8]) -> Text {
        let mut buf = [0u8; TEXT_MAX];
        buf[..bytes.len()].copy_from_slice(bytes);
        Text {
            buf,
            len: bytes.len() as u8,
            pos: 0,
        }
    }

    /// `\r\n[multiplex: N bytes WHAT]\r\n` ("byte" when N is 1).
    fn line(n: u64, what: &str) -> Text {
        let mut buf = [0u8; TEXT_MAX];
        let unit = if n == 1 { "byte" } else { "bytes" };
        let mut w = &mut buf[..];
        let room = w.len();
        // Cannot fail: 20 digits and the longest word fit in TEXT_MAX.
        let _ = write!(w, "\r\n[multiplex: {n} {unit} {what}]\r\n");
        let len = room - w.len();
        Text {
            buf,
            len: len as u8,
            pos: 0,
        }
    }

    /// The drop notice: `\r\n[multiplex: N bytes dropped]\r\n`.
    pub fn notice(dropped: u64) -> Text {
        Text::line(dropped, "dropped")
    }

    /// The skip marker of a replay: `\r\n[multiplex: N bytes skipped]\r\n`.
    pub fn skipped(skipped: u64) -> Text {
        Text::line(skipped, "skipped")
    }

    /// The stamp of a line that started at `wall`.
    pub fn stamp(wall: Wall) -> Text {
        Text::from_bytes(&format_stamp(wall.raw()))
    }

    /// What the sink has not taken yet.
    pub fn rest(&self) -> &[u8] {
        &self.buf[usize::from(self.pos)..usize::from(self.len)]
    }

    /// Whether nothing of it was taken yet.
    pub const fn untouched(&self) -> bool {
        self.pos == 0
    }

    /// The sink took `n` more bytes (at most [`Text::rest`]); returns
    /// whether it has all of it now.
    pub fn advance(&mut self, n: usize) -> bool {
        debug_assert!(n <= self.rest().len());
        self.pos += n.min(self.rest().len()) as u8;
        self.pos >= self.len
    }
}

/// How many line-start times a queue (or history, or head) of `capacity`
/// bytes keeps: all of them up to 64, else one per 8 bytes. Memory: 8
/// bytes per time, so at most `max(capacity, 512)` bytes. A queue whose
/// lines are shorter than 8 bytes on average can hold more line starts
/// than that: the oldest ones are then forgotten ([`UNKNOWN_STAMP`]).
pub const fn time_slots(capacity: usize) -> usize {
    let per_8 = capacity / 8;
    let slots = if per_8 > 64 { per_8 } else { 64 };
    if slots < capacity {
        slots
    } else {
        capacity
    }
}

/// The start times of lines, oldest first, in storage allocated once. When
/// it is full, pushing forgets the oldest time (it becomes unknown) but
/// keeps its place: the count stays exact.
#[derive(Debug)]
pub struct TimeRing {
    times: VecDeque<u64>,
    slots: usize,
    /// Times at the front that were forgotten.
    unknown: usize,
}

impl TimeRing {
    /// A ring of `slots` times, allocated now.
    pub fn with_slots(slots: usize) -> Result<TimeRing, TryReserveError> {
        let mut times = VecDeque::new();
        times.try_reserve_exact(slots)?;
        Ok(TimeRing {
            times,
            slots,
            unknown: 0,
        })
    }

    /// A ring that keeps no time (every time pushed is forgotten).
    pub const fn empty() -> TimeRing {
        TimeRing {
            times: VecDeque::new(),
            slots: 0,
            unknown: 0,
        }
    }

    /// How many times it can keep.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// How many times it holds, forgotten ones included.
    pub fn len(&self) -> usize {
        self.unknown + self.times.len()
    }

    /// Forgotten times at the front.
    pub fn unknown(&self) -> usize {
        self.unknown
    }

    /// The times it still knows, oldest first (after [`TimeRing::unknown`] forgotten ones).
    pub fn known(&self) -> impl Iterator<Item = Wall> + '_ {
        self.times.iter().map(|&t| Wall(t))
    }

    pub fn push(&mut self, t: Wall) {
        if self.times.len() >= self.slots {
            if self.times.pop_front().is_some() || self.slots == 0 {
                self.unknown += 1;
            }
            if self.slots == 0 {
                return;
            }
        }
        self.times.push_back(t.0);
    }

    /// Pushes `t` `n` times.
    pub fn push_n(&mut self, t: Wall, n: usize) {
        for _ in 0..n {
            self.push(t);
        }
    }

    /// Removes the `n` oldest times and returns the last of them (`None`
    /// when `n` is 0). It must hold at least `n`.
    pub fn pop_n(&mut self, n: usize) -> Option<Wall> {
        if n == 0 {
            return None;
        }
        debug_assert!(n <= self.len(), "popping {n} of {} times", self.len());
        if n <= self.unknown {
            self.unknown -= n;
            return Some(Wall::UNKNOWN);
        }
        let known = (n - self.unknown).min(self.times.len());
        self.unknown = 0;
        self.times.drain(..known - 1);
        Some(self.times.pop_front().map_or(Wall::UNKNOWN, Wall))
    }

    /// The `k`-th time, oldest first ([`Wall::UNKNOWN`] if forgotten or absent).
    pub fn get(&self, k: usize) -> Wall {
        match k.checked_sub(self.unknown) {
            None => Wall::UNKNOWN,
            Some(i) => self.times.get(i).map_or(Wall::UNKNOWN, |&t| Wall(t)),
        }
    }

    pub fn clear(&mut self) {
        self.times.clear();
        self.unknown = 0;
    }

    /// Becomes a copy of `other` (whose known times must fit).
    pub fn copy_from(&mut self, other: &TimeRing) {
        self.clear();
        self.unknown = other.unknown;
        for t in other.known() {
            self.push(t);
        }
    }

    /// Becomes `unknown` forgotten times followed by `known` (which must fit).
    pub fn restore(&mut self, unknown: usize, known: impl Iterator<Item = Wall>) {
        self.clear();
        self.unknown = unknown;
        for t in known {
            self.push(t);
        }
    }
}

/// Where the frontend's output stands in its current line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineState {
    /// The next byte starts a line (nothing written yet, or the last byte was `\n`).
    AtStart,
    /// The next byte continues a line that started at this time.
    In(Wall),
}

impl LineState {
    /// What a write of `data` at `wall` makes of it. Searches `data` only
    /// when that tells two times apart: its last line started in it (at
    /// `wall`) or before it (at the time under way).
    #[inline]
    pub fn after(self, data: &[u8], wall: Wall) -> LineState {
        match (data.split_last(), self) {
            (None, _) => self,
            (Some((b'\n', _)), _) => LineState::AtStart,
            (Some(_), LineState::AtStart) => LineState::In(wall),
            (Some((_, before)), LineState::In(t)) => {
                if t != wall && memchr::memrchr(b'\n', before).is_some() {
                    LineState::In(wall)
                } else {
                    LineState::In(t)
                }
            }
        }
    }
}

/// What a write tells the queues about the line its first byte belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineCtx {
    /// The time of the line its first byte belongs to.
    pub first: Wall,
    /// Whether its first byte continues a line (rather than starting one).
    pub continues: bool,
    /// The write's wall clock: the time of every line that starts in it.
    pub wall: Wall,
}

impl LineCtx {
    #[inline]
    pub const fn new(line: LineState, wall: Wall) -> LineCtx {
        match line {
            LineState::AtStart => LineCtx {
                first: wall,
                continues: false,
                wall,
            },
            LineState::In(t) => LineCtx {
                first: t,
                continues: true,
                wall,
            },
        }
    }

    /// The context of a byte that starts a line of this write (after a
    /// newline of it, or after bytes skipped up to one).
    pub const fn line_start(self) -> LineCtx {
        LineCtx {
            first: self.wall,
            continues: false,
            wall: self.wall,
        }
    }
}

/// Newlines in `s`.
pub fn count_newlines(s: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', s).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::calendar::date_from_days as naive_date;

    #[test]
    fn civil_from_days_agrees_with_a_naive_calendar() {
        // Every day from 1970 to 2200, and then some far ones.
        let mut days = 0u64;
        let mut naive = (1970u64, 1u64, 1u64);
        while days < 84_000 {
            assert_eq!(civil_from_days(days), naive, "day {days}");
            days += 1;
            naive = naive_date(days);
        }
        for d in [100_000u64, 150_000, 213_503] {
            assert_eq!(civil_from_days(d), naive_date(d), "day {d}");
        }
    }

    #[test]
    fn stamps_look_like_qemus() {
        // date -u -d 2026-12-06T18:11:04.783070Z +%s.%N
        let ns = 1_796_580_664_783_070_999;
        assert_eq!(&format_stamp(ns), b"2026-12-06T18:11:04.783070Z ");
        assert_eq!(&format_stamp(0), b"1970-01-01T00:00:00.000000Z ");
        // 2000-02-29T23:59:59.999999Z, a leap day of a century divisible by 400.
        assert_eq!(
            &format_stamp(951_868_799_999_999_000),
            b"2000-02-29T23:59:59.999999Z "
        );
        assert_eq!(&format_stamp(u64::MAX - 1), b"2554-07-21T23:34:33.709551Z ");
        assert_eq!(&format_stamp(u64::MAX), UNKNOWN_STAMP);
    }

    #[test]
    fn texts_say_how_many_bytes() {
        assert_eq!(
            Text::notice(1).rest(),
            b"\r\n[multiplex: 1 byte dropped]\r\n"
        );
        assert_eq!(
            Text::skipped(u64::MAX).rest(),
            b"\r\n[multiplex: 18446744073709551615 bytes skipped]\r\n"
        );
        let mut t = Text::stamp(Wall::from_ns(0));
        assert!(t.untouched());
        assert!(!t.advance(27));
        assert_eq!(t.rest(), b" ");
        assert!(t.advance(1));
    }

    #[test]
    fn a_full_ring_forgets_its_oldest_times_but_keeps_count() {
        let mut r = TimeRing::with_slots(2).unwrap();
        for t in 1..=5 {
            r.push(Wall::from_ns(t));
        }
        assert_eq!((r.len(), r.unknown()), (5, 3));
        assert_eq!(r.get(2), Wall::UNKNOWN);
        assert_eq!(r.get(3), Wall::from_ns(4));
        assert_eq!(r.pop_n(2), Some(Wall::UNKNOWN));
        assert_eq!(r.pop_n(2), Some(Wall::from_ns(4)));
        assert_eq!(r.pop_n(1), Some(Wall::from_ns(5)));
        assert_eq!((r.len(), r.pop_n(0)), (0, None));
        let mut none = TimeRing::empty();
        none.push(Wall::from_ns(1));
        assert_eq!((none.len(), none.get(0)), (1, Wall::UNKNOWN));
        assert_eq!(time_slots(10), 10);
        assert_eq!(time_slots(300), 64);
        assert_eq!(time_slots(65536), 8192);
    }

    #[test]
    fn the_line_state_follows_the_newlines() {
        let (a, b) = (Wall::from_ns(1), Wall::from_ns(2));
        let s = LineState::AtStart.after(b"ab", a);
        assert_eq!(s, LineState::In(a));
        assert_eq!(s.after(b"cd", b), LineState::In(a));
        assert_eq!(s.after(b"c\nd", b), LineState::In(b));
        assert_eq!(s.after(b"c\n", b), LineState::AtStart);
        assert_eq!(s.after(b"", b), s);
    }
}
