//! The C ABI fed arbitrary configurations and call sequences, as a careless
//! caller of the pull API would make them: NULL pointers, bad sink indexes
//! and event values, reports of any outcome (everything, a short write,
//! nothing, EAGAIN, EINTR, hard errors, more than was handed out) for the
//! sink that was handed bytes or for another one, and sink events, writes
//! and timeouts between `cmx_mux_poll_transmit()` and the report. Nothing
//! may crash or panic, every result must be a known code and the one the
//! contract names, bytes handed out must be readable and be the frontend's,
//! the counters must always add up, and a frontend that was turned away
//! must be told it may write again once the sinks drain. Sinks are
//! attached, detached and released, and the input moves, in between: a
//! released index is refused, a detaching sink still drains, and drop
//! notices reach only the sinks that asked for them. Out-parameters are
//! written only on success; configurations with a wrong `size` are
//! refused; sink reports are consistent (drop episodes start and stop in
//! turn, a failure is reported with its errno, a finished detach once) and
//! the frontend's offers add up in `cmx_mux_stats()`. Line stamps, the
//! replay head and its reset are in the mix: what is handed out is the
//! frontend's bytes, or a stamp, notice or skip marker for a sink that can
//! have one, and every byte written is counted once. Replay blobs: the
//! multiplexer's own exported and imported into a new one (which exports
//! the same blob), the same with bytes changed, and arbitrary bytes from
//! the input: each import is taken or refused with the code the contract
//! names, never a panic, and a blob taken is written out again as taken.
#![no_main]

use core::ptr::{null, null_mut};

use chardev_multiplex::ffi::*;
use libfuzzer_sys::fuzz_target;

#[path = "bytes.rs"]
mod bytes;
use bytes::Bytes;

/// Every byte the frontend writes; anything else handed out is corruption.
const FILL: u8 = 0x5a;

fn known(r: cmx_result) {
    assert!(cmx_result::ALL.contains(&r), "unknown result {r:?}");
    assert_ne!(r, cmx_result::Panic);
}

/// What a sink's write "returned", for `cmx_mux_transmitted()`: `a` picks
/// the outcome, `len` is how many bytes were handed out.
fn outcome(a: u8, len: usize) -> isize {
    match a % 11 {
        0 | 1 => len as isize,
        2 => -(libc::EAGAIN as isize),
        3 => (a as usize % (len + 1)) as isize,
        4 => -(libc::EINTR as isize),
        5 => -([libc::EPIPE, libc::EIO, libc::ENOSPC][a as usize % 3] as isize),
        6 => len as isize + 1 + a as isize,
        7 => isize::MIN,
        8 => -(libc::EWOULDBLOCK as isize),
        9 => -(a as isize) * 1000,
        _ => 0,
    }
}

/// Any byte a drop notice or skip marker (`\r\n[multiplex: N bytes
/// dropped]\r\n`, `... skipped]\r\n`) has.
fn notice_byte(b: u8) -> bool {
    b"\r\n[multiplex: 0123456789bytesdropkip]".contains(&b)
}

/// Any byte a line stamp (`YYYY-MM-DDTHH:MM:SS.uuuuuuZ `, or `?` for the digits) has.
fn stamp_byte(b: u8) -> bool {
    b"0123456789-T:.Z ?".contains(&b)
}

/// Every byte written to a sink.
fn written_to(st: &cmx_sink_stats) -> u64 {
    st.delivered + st.stamp_bytes + st.notice_bytes + st.skip_marker_bytes
}

/// The caller's view of one multiplexer, checked against what it reports.
struct Caller {
    mux: *mut cmx_mux,
    /// Sink slots (attached, detaching or released).
    n: usize,
    /// Which slots asked for drop notices.
    notices: [bool; CMX_MAX_SINKS],
    /// Which slots asked for line stamps.
    stamps: [bool; CMX_MAX_SINKS],
    /// Whether replays may write a skip marker (a head is kept).
    head: bool,
    /// The configuration, for new multiplexers to import into.
    config: cmx_mux_config,
    /// Whether output was written (an import is refused: not fresh).
    written: bool,
    /// The bytes out with the caller: (sink, len) from the last
    /// `cmx_mux_poll_transmit()` not yet reported or withdrawn.
    in_flight: Option<(usize, usize)>,
    /// The sink whose bytes out were withdrawn (it closed or was detached,
    /// or dropped them): its next report is accepted and ignored.
    withdrawn: Option<usize>,
    /// WOULD_BLOCK results and WRITABLE events so far: each WRITABLE ends a
    /// spell of WOULD_BLOCKs, so there are never more of them.
    would_blocks: u64,
    writables: u64,
    /// The frontend got WOULD_BLOCK after the last WRITABLE it saw.
    turned_away: bool,
    /// Whether the frontend was last told OPENED (from the events seen).
    told_open: bool,
    /// Calls that may have queued events since the queue was last emptied;
    /// past 16 (up to two events each) it may have overflowed, by design.
    unpolled: usize,
    events_maybe_lost: bool,
    /// Per slot: a drop episode reported started and not yet stopped.
    dropping: [bool; CMX_MAX_SINKS],
    /// The frontend's offers: (offered, accepted, refused bytes, refusals).
    offers: (u64, u64, u64, u64),
}

impl Caller {
    /// A sink's statistics; None for a released (or never used) index.
    fn try_stats(&self, sink: usize) -> Option<cmx_sink_stats> {
        let mut st = cmx_sink_stats::default();
        // SAFETY: `mux` is live; `st` is writable.
        match unsafe { cmx_mux_sink_stats(self.mux, sink, &mut st) } {
            cmx_result::Ok => Some(st),
            r => {
                assert_eq!(r, cmx_result::InvalidSink);
                None
            }
        }
    }

    fn stats(&self, sink: usize) -> cmx_sink_stats {
        self.try_stats(sink).expect("a sink that exists")
    }

    /// Open, or open and being detached: its queue is written.
    fn drains(st: &cmx_sink_stats) -> bool {
        st.state == cmx_sink_state::Open as u32 || st.state == cmx_sink_state::Detaching as u32
    }

    /// Attached: open, closed or failed (not being detached, nor detached).
    fn attached(&self, sink: usize) -> bool {
        self.try_stats(sink).is_some_and(|st| {
            st.state != cmx_sink_state::Detaching as u32
                && st.state != cmx_sink_state::Detached as u32
        })
    }

    /// The bytes out for `sink`, if any, are withdrawn.
    fn withdraw(&mut self, sink: usize) {
        if self.in_flight.is_some_and(|f| f.0 == sink) {
            self.in_flight = None;
            self.withdrawn = Some(sink);
        }
    }

    fn may_queue_events(&mut self) {
        self.unpolled += 1;
        self.events_maybe_lost |= self.unpolled >= 16;
    }

    /// `cmx_mux_poll_transmit()`: what it hands out is a non-empty run of
    /// the frontend's bytes for an open sink, no more than it has queued.
    fn poll_transmit(&mut self) -> cmx_transmit {
        let mut t = cmx_transmit {
            sink: usize::MAX,
            data: null(),
            len: usize::MAX,
        };
        // SAFETY: `mux` is live; `t` is writable.
        let r = unsafe { cmx_mux_poll_transmit(self.mux, &mut t) };
        assert_eq!(r, cmx_result::Ok);
        if t.len == 0 {
            assert!(t.data.is_null());
            assert_eq!(self.in_flight, None, "bytes out, yet nothing handed out");
            return t;
        }
        assert!(t.sink < self.n && !t.data.is_null());
        // SAFETY: the library hands out `len` readable bytes.
        let data = unsafe { core::slice::from_raw_parts(t.data, t.len) };
        let text = (self.notices[t.sink] || self.head) && data.iter().all(|&b| notice_byte(b))
            || self.stamps[t.sink] && data.len() <= 28 && data.iter().all(|&b| stamp_byte(b));
        assert!(
            text || data.iter().all(|&b| b == FILL),
            "foreign bytes handed out"
        );
        let st = self.stats(t.sink);
        assert!(Self::drains(&st), "{st:?}");
        assert!(text || t.len as u64 <= st.queued);
        if let Some((sink, _)) = self.in_flight {
            assert_eq!(sink, t.sink, "another sink handed out before the report");
        }
        self.in_flight = Some((t.sink, t.len));
        // A withdrawn transmit that was not reported is forgotten.
        self.withdrawn = None;
        t
    }

    /// `cmx_mux_transmitted()`, and the result the contract names for it.
    fn transmitted(&mut self, sink: usize, result: isize) {
        let withdrawn = self.withdrawn == Some(sink);
        let expect = if sink >= self.n || self.try_stats(sink).is_none() {
            // No such sink, or a released one.
            cmx_result::InvalidSink
        } else if self.in_flight.is_some_and(|f| f.0 == sink) || withdrawn {
            cmx_result::Ok
        } else {
            cmx_result::NotOffered
        };
        let before = self.try_stats(sink);
        // SAFETY: `mux` is live.
        let r = unsafe { cmx_mux_transmitted(self.mux, sink, result) };
        assert_eq!(
            r, expect,
            "transmitted({sink}, {result}), out: {:?}",
            self.in_flight
        );
        self.may_queue_events();
        if withdrawn && expect == cmx_result::Ok {
            // Accepted and ignored.
            self.withdrawn = None;
            assert_eq!(before, self.try_stats(sink), "a withdrawn report counted");
            return;
        }
        let Some((_, len)) = self.in_flight.filter(|f| f.0 == sink) else {
            return;
        };
        self.in_flight = None;
        let (before, after) = (before.unwrap(), self.stats(sink));
        // Failed, or (being detached) detached by the failure.
        let failed = after.state == cmx_sink_state::Failed as u32
            || (before.state == cmx_sink_state::Detaching as u32
                && after.state == cmx_sink_state::Detached as u32
                && after.write_errors > before.write_errors);
        let errno = match result {
            n if n > len as isize => libc::EINVAL,
            n if n >= 0 => 0,
            n => n
                .checked_neg()
                .and_then(|e| i32::try_from(e).ok())
                .unwrap_or(libc::EINVAL),
        };
        match errno {
            0 if result > 0 => {
                assert_eq!(written_to(&after), written_to(&before) + result as u64);
                assert!(!failed);
            }
            // Nothing taken: it is watched.
            0 | libc::EAGAIN => assert!(self.watch_mask() & 1 << sink != 0),
            libc::EINTR => assert!(!failed && after.delivered == before.delivered),
            e => {
                assert!(failed, "-{e} did not fail sink {sink}");
                assert_eq!(after.write_errors, before.write_errors + 1);
                assert_eq!((after.last_errno, after.queued), (e, 0));
            }
        }
    }

    /// A write (or write_at) of `len` bytes, with its result checked.
    fn write(&mut self, len: usize, now: Option<u64>, payload: &[u8]) -> cmx_result {
        let dropped: Vec<u64> = (0..self.n)
            .map(|i| self.try_stats(i).map_or(0, |st| st.dropped))
            .collect();
        let mut room = 0usize;
        // SAFETY: `mux` is live; `room` is writable.
        assert_eq!(
            unsafe { cmx_mux_write_room(self.mux, &mut room) },
            cmx_result::Ok
        );
        let mut accepted = usize::MAX;
        // SAFETY: `mux` is live; `payload` has `len` bytes; `accepted` is writable.
        let r = unsafe {
            match now {
                None => cmx_mux_write(self.mux, payload.as_ptr(), len, &mut accepted),
                Some(now) if now % 3 == 0 => {
                    cmx_mux_write_at(self.mux, payload.as_ptr(), len, now, &mut accepted)
                }
                // A wall clock of any value (u64::MAX: unknown).
                Some(now) => cmx_mux_write_at_wall(
                    self.mux,
                    payload.as_ptr(),
                    len,
                    now,
                    now.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                    &mut accepted,
                ),
            }
        };
        match r {
            cmx_result::Ok => assert!(accepted <= len && (accepted > 0 || len == 0)),
            cmx_result::WouldBlock => {
                // Out-parameters are written only on success.
                assert_eq!(accepted, usize::MAX);
                self.would_blocks += 1;
                self.turned_away = true;
                if now.is_none() {
                    assert_eq!(room, 0, "turned away with room");
                }
            }
            r => panic!("write: {r:?}"),
        }
        let took = if r == cmx_result::Ok { accepted } else { 0 };
        self.written |= took > 0;
        self.offers.0 += len as u64;
        self.offers.1 += took as u64;
        if took < len {
            self.offers.2 += (len - took) as u64;
            self.offers.3 += 1;
        }
        // A `drop` sink that discarded its front withdrew the bytes out with the caller.
        if let Some((sink, _)) = self.in_flight {
            if self.stats(sink).dropped != dropped[sink] {
                self.withdraw(sink);
            }
        }
        self.may_queue_events();
        r
    }

    /// One event from `cmx_mux_poll_event()`, checked against those before
    /// it; false for NONE (then `cmx_mux_frontend_open()` must agree).
    fn saw(&mut self, ev: cmx_frontend_event) -> bool {
        match ev {
            cmx_frontend_event::None => {
                let mut open = false;
                // SAFETY: `mux` is live; `open` is writable; `n_sinks` may be NULL.
                assert_eq!(
                    unsafe { cmx_mux_frontend_open(self.mux, &mut open, null_mut()) },
                    cmx_result::Ok
                );
                assert_eq!(
                    open, self.told_open,
                    "the events disagree with frontend_open"
                );
                self.unpolled = 0;
                return false;
            }
            cmx_frontend_event::Opened => {
                assert!(!self.told_open, "OPENED twice");
                self.told_open = true;
            }
            cmx_frontend_event::Closed => {
                assert!(self.told_open, "CLOSED while closed");
                self.told_open = false;
            }
            cmx_frontend_event::Break => {}
            cmx_frontend_event::Writable => {
                assert!(
                    self.writables < self.would_blocks,
                    "WRITABLE without WOULD_BLOCK"
                );
                self.writables += 1;
                self.turned_away = false;
            }
        }
        true
    }

    /// `cmx_mux_poll_event()` until NONE.
    fn poll_events(&mut self) {
        loop {
            let mut ev = cmx_frontend_event::Break;
            // SAFETY: `mux` is live; `ev` is writable.
            assert_eq!(
                unsafe { cmx_mux_poll_event(self.mux, &mut ev) },
                cmx_result::Ok
            );
            if !self.saw(ev) {
                return;
            }
        }
    }

    /// `cmx_mux_stats()`.
    fn counters(&self) -> cmx_mux_counters {
        let mut c = cmx_mux_counters::default();
        // SAFETY: `mux` is live; `c` is writable.
        assert_eq!(unsafe { cmx_mux_stats(self.mux, &mut c) }, cmx_result::Ok);
        c
    }

    /// One report from `cmx_mux_poll_sink_report()`, checked; false for NONE.
    fn poll_report(&mut self) -> bool {
        let mut r = cmx_sink_report {
            kind: u32::MAX,
            ..cmx_sink_report::default()
        };
        // SAFETY: `mux` is live; `r` is writable.
        assert_eq!(
            unsafe { cmx_mux_poll_sink_report(self.mux, &mut r) },
            cmx_result::Ok
        );
        let kind = cmx_sink_report_kind::try_from(r.kind).expect("a known report kind");
        if kind == cmx_sink_report_kind::None {
            assert_eq!(r, cmx_sink_report::default());
            return false;
        }
        assert!(r.sink < self.n, "{r:?}");
        // With reports lost to an unpolled queue, their order says less.
        let exact = self.counters().reports_lost == 0;
        let st = self.try_stats(r.sink);
        match kind {
            cmx_sink_report_kind::DropStarted => {
                if exact {
                    assert!(!self.dropping[r.sink], "started twice: {r:?}");
                }
                assert!(r.dropped > 0 && r.drop_unit <= 1, "{r:?}");
                self.dropping[r.sink] = true;
            }
            cmx_sink_report_kind::DropStopped => {
                if exact {
                    assert!(self.dropping[r.sink], "stopped, never started: {r:?}");
                }
                assert!(r.episode > 0 && r.episode <= r.dropped, "{r:?}");
                self.dropping[r.sink] = false;
            }
            cmx_sink_report_kind::Failed => {
                assert!(r.errnum > 0, "{r:?}");
                assert!(st.map_or(true, |st| st.write_errors > 0), "{r:?} {st:?}");
            }
            cmx_sink_report_kind::Detached => {
                // Detached (until released).
                assert!(
                    st.map_or(true, |st| st.state == cmx_sink_state::Detached as u32),
                    "{r:?} {st:?}"
                );
            }
            cmx_sink_report_kind::None => unreachable!(),
        }
        true
    }

    /// The pull loop of a well-behaved caller, with sink outcomes from `b`
    /// (at most `limit` writes), then the watch mask and the events.
    fn pump(&mut self, b: &mut Bytes, limit: usize) {
        for _ in 0..limit {
            let t = self.poll_transmit();
            if t.len == 0 {
                break;
            }
            self.transmitted(t.sink, outcome(b.byte().unwrap_or(0), t.len));
        }
        self.watch_mask();
        self.poll_events();
        while self.poll_report() {}
    }

    fn watch_mask(&self) -> u32 {
        let mut mask = u32::MAX;
        // SAFETY: `mux` is live; `mask` is writable.
        assert_eq!(
            unsafe { cmx_mux_watch_mask(self.mux, &mut mask) },
            cmx_result::Ok
        );
        assert_eq!(
            mask >> self.n,
            0,
            "watch bit for a sink that does not exist"
        );
        mask
    }

    /// `cmx_mux_attach()` with a configuration from `x` (as at creation).
    fn attach(&mut self, x: usize) -> cmx_result {
        // Reports about the slot's previous sink are taken first, as a
        // caller that polls after every call has.
        while self.poll_report() {}
        let config = sink_config(x);
        // The lowest released slot, else a new one.
        let slot = (0..self.n)
            .find(|&i| self.try_stats(i).is_none())
            .unwrap_or(self.n);
        let mut sink = usize::MAX;
        // SAFETY: `mux` is live; `config` and `sink` are valid.
        let r = unsafe { cmx_mux_attach(self.mux, &config, &mut sink) };
        self.may_queue_events();
        let invalid = config.overflow > 1
            || config.size != core::mem::size_of::<cmx_sink_config>()
            || config.drop_unit > 1
            || (config.drop_notice && config.overflow == cmx_overflow::Block as u32);
        if invalid {
            assert_ne!(r, cmx_result::Ok);
            return r;
        }
        if slot == CMX_MAX_SINKS {
            assert_eq!(r, cmx_result::SinkLimit);
            return r;
        }
        assert_eq!((r, sink), (cmx_result::Ok, slot));
        self.n = self.n.max(sink + 1);
        self.notices[sink] = config.drop_notice;
        self.stamps[sink] = config.timestamp;
        let st = self.stats(sink);
        assert_eq!((st.delivered, st.dropped, st.write_errors), (0, 0, 0));
        r
    }

    /// `cmx_mux_detach()` or `cmx_mux_release()` of `sink`.
    fn detach(&mut self, sink: usize, release: bool) -> cmx_result {
        if release {
            while self.poll_report() {}
        }
        let before = self.try_stats(sink);
        let was_attached = self.attached(sink);
        let receivers = (0..self.n).filter(|&i| self.attached(i)).count();
        let mut backlog = usize::MAX;
        let mut last = cmx_sink_stats::default();
        // SAFETY: `mux` is live; the out pointers are valid.
        let r = unsafe {
            if release {
                cmx_mux_release(self.mux, sink, &mut last)
            } else {
                cmx_mux_detach(self.mux, sink, &mut backlog)
            }
        };
        self.may_queue_events();
        let Some(before) = before else {
            assert_eq!(r, cmx_result::InvalidSink);
            return r;
        };
        if receivers == 1 && was_attached {
            assert_eq!(r, cmx_result::LastSink);
            return r;
        }
        assert_eq!(r, cmx_result::Ok);
        if release {
            assert!(self.try_stats(sink).is_none());
            assert_eq!(last.offered, last.delivered + last.queued + last.dropped);
            assert_eq!(last.queued, 0);
            self.in_flight = self.in_flight.filter(|f| f.0 != sink);
            self.withdrawn = self.withdrawn.filter(|&w| w != sink);
        } else {
            let st = self.stats(sink);
            // Only a connected `block` sink with a backlog goes on writing it.
            let detaching = st.state == cmx_sink_state::Detaching as u32;
            assert!(
                detaching || st.state == cmx_sink_state::Detached as u32,
                "{st:?}"
            );
            assert_eq!(backlog as u64, st.queued);
            if detaching {
                assert!(st.overflow == cmx_overflow::Block as u32 && st.queued > 0);
                // It was open (or already being detached).
                assert!(Self::drains(&before), "{before:?}");
            } else {
                assert_eq!(st.queued, 0);
                self.withdraw(sink);
            }
        }
        r
    }

    /// `cmx_mux_replay_export()`: the size, a buffer one byte short
    /// (refused, nothing written), then the blob.
    fn export(&self) -> Vec<u8> {
        let mut needed = usize::MAX;
        // SAFETY: `mux` is live; NULL with length 0 asks for the size.
        let r = unsafe { cmx_mux_replay_export(self.mux, null_mut(), 0, &mut needed) };
        assert_eq!(r, cmx_result::Ok);
        assert!(needed >= 128, "shorter than a blob's fixed part: {needed}");
        let mut blob = vec![0u8; needed];
        let mut again = 7usize;
        // SAFETY: `mux` is live; `blob` is writable for `needed - 1` bytes.
        let r =
            unsafe { cmx_mux_replay_export(self.mux, blob.as_mut_ptr(), needed - 1, &mut again) };
        assert_eq!((r, again), (cmx_result::BufferTooSmall, 7));
        assert!(blob.iter().all(|&x| x == 0), "a refused export wrote");
        // SAFETY: as above, `needed` bytes.
        let r = unsafe { cmx_mux_replay_export(self.mux, blob.as_mut_ptr(), needed, &mut again) };
        assert_eq!((r, again), (cmx_result::Ok, needed));
        blob
    }

    /// `cmx_mux_replay_import()` of `blob` into a new multiplexer of the
    /// same configuration: taken (then it exports the same blob) or refused
    /// with one of the codes for a blob; `must` says it must be taken. A
    /// viewer attached there afterwards is written something, or nothing.
    fn import_fresh(&self, blob: &[u8], must: bool) {
        let mut m = null_mut();
        // SAFETY: `config` was valid for the first multiplexer, and `sinks`
        // it points to lives as long as `self`.
        assert_eq!(unsafe { cmx_mux_new(&self.config, &mut m) }, cmx_result::Ok);
        // SAFETY: `m` is live; `blob` is readable for its length.
        let r = unsafe { cmx_mux_replay_import(m, blob.as_ptr(), blob.len()) };
        let refusals = [
            cmx_result::ReplayBlobMalformed,
            cmx_result::ReplayBlobVersion,
            cmx_result::ReplayBlobTooLarge,
        ];
        match r {
            cmx_result::Ok => {
                let other = Caller {
                    mux: m,
                    ..self.shell()
                };
                assert_eq!(other.export(), blob, "an imported blob exported otherwise");
                // A viewer that opens now is replayed what was taken.
                let viewer = cmx_sink_config {
                    size: core::mem::size_of::<cmx_sink_config>(),
                    open: true,
                    timestamp: blob.len() % 2 == 0,
                    ..sink_config(0)
                };
                let mut sink = 0usize;
                // SAFETY: `m` is live; `viewer` and `sink` are valid.
                let a = unsafe { cmx_mux_attach(m, &viewer, &mut sink) };
                assert!(a == cmx_result::Ok || a == cmx_result::SinkLimit, "{a:?}");
                let mut t = cmx_transmit {
                    sink: 0,
                    data: null(),
                    len: 0,
                };
                // SAFETY: `m` is live; `t` is writable; what it hands out is
                // reported at once.
                unsafe {
                    while cmx_mux_poll_transmit(m, &mut t) == cmx_result::Ok && t.len > 0 {
                        assert_eq!(
                            cmx_mux_transmitted(m, t.sink, t.len as isize),
                            cmx_result::Ok
                        );
                    }
                }
            }
            r => {
                assert!(!must, "its own blob refused: {r:?}");
                assert!(refusals.contains(&r), "import: {r:?}");
            }
        }
        // SAFETY: from cmx_mux_new, freed once.
        unsafe { cmx_mux_free(m) };
    }

    /// A caller of another multiplexer, for [`Caller::export`].
    fn shell(&self) -> Caller {
        Caller {
            mux: null_mut(),
            n: 0,
            notices: [false; CMX_MAX_SINKS],
            stamps: [false; CMX_MAX_SINKS],
            head: self.head,
            config: self.config,
            written: false,
            in_flight: None,
            withdrawn: None,
            would_blocks: 0,
            writables: 0,
            turned_away: false,
            told_open: false,
            unpolled: 0,
            events_maybe_lost: false,
            dropping: [false; CMX_MAX_SINKS],
            offers: (0, 0, 0, 0),
        }
    }

    /// What holds after every call.
    fn check(&self) {
        let mask = self.watch_mask();
        let mut backlog = 0u64;
        for i in 0..self.n {
            let Some(st) = self.try_stats(i) else {
                assert_eq!(mask & 1 << i, 0, "released sink {i} watched");
                continue;
            };
            assert_eq!(
                st.offered,
                st.delivered + st.queued + st.dropped,
                "sink {i}"
            );
            assert!(st.queued <= st.queue_high_water);
            if !self.notices[i] {
                assert_eq!((st.notices, st.notice_bytes), (0, 0), "sink {i}");
            }
            if !self.stamps[i] {
                assert_eq!((st.stamps, st.stamp_bytes), (0, 0), "sink {i}");
            }
            if !self.head {
                assert_eq!((st.skip_markers, st.skip_marker_bytes), (0, 0), "sink {i}");
            }
            if mask & 1 << i != 0 {
                let text = self.notices[i] || self.stamps[i] || self.head;
                assert!(
                    Self::drains(&st) && (st.queued > 0 || text),
                    "sink {i} watched: {st:?}"
                );
            }
            if !Self::drains(&st) {
                assert_eq!(st.queued, 0, "sink {i} not open, yet queued");
            }
            // Open or being detached (as documented since 2dbf5bd; this
            // oracle counted open sinks only).
            if Self::drains(&st) && st.overflow == cmx_overflow::Block as u32 {
                backlog += st.queued;
            }
        }
        let mut got = usize::MAX;
        // SAFETY: `mux` is live; `got` is writable.
        assert_eq!(
            unsafe { cmx_mux_lossless_backlog(self.mux, &mut got) },
            cmx_result::Ok
        );
        assert_eq!(got as u64, backlog);
        let c = self.counters();
        assert_eq!(
            (
                c.frontend_offered,
                c.frontend_accepted,
                c.frontend_refused_bytes,
                c.frontend_refusals
            ),
            self.offers
        );
    }

    /// Every sink takes everything: nothing accepted by an open `block` sink
    /// stays queued, and a frontend that was turned away hears WRITABLE.
    fn finish(&mut self) {
        // SAFETY (all calls below): `mux` is live.
        assert_eq!(
            unsafe { cmx_mux_handle_timeout(self.mux, u64::MAX) },
            cmx_result::Ok
        );
        if let Some((sink, _)) = self.in_flight {
            self.transmitted(sink, -(libc::EAGAIN as isize));
        }
        for i in 0..self.n {
            let r = unsafe { cmx_mux_sink_writable(self.mux, i) };
            let want = if self.try_stats(i).is_some() {
                cmx_result::Ok
            } else {
                cmx_result::InvalidSink
            };
            assert_eq!(r, want);
        }
        loop {
            let t = self.poll_transmit();
            if t.len == 0 {
                break;
            }
            self.transmitted(t.sink, t.len as isize);
        }
        assert_eq!(self.watch_mask(), 0);
        let waiting = self.turned_away;
        self.poll_events();
        if waiting && !self.events_maybe_lost {
            assert!(
                !self.turned_away,
                "lost wake-up: no WRITABLE after the sinks drained"
            );
        }
        while self.poll_report() {}
        self.check();
        let mut backlog = usize::MAX;
        assert_eq!(
            unsafe { cmx_mux_lossless_backlog(self.mux, &mut backlog) },
            cmx_result::Ok
        );
        assert_eq!(backlog, 0);
    }
}

/// A sink configuration from one byte: mostly valid, now and then an
/// unknown overflow policy (0x70), an unknown drop unit (0x60), a notice
/// on a block sink (0x10 with bit 0) or a size from another header (0xfe).
fn sink_config(x: usize) -> cmx_sink_config {
    cmx_sink_config {
        // Now and then a size from another version of the header.
        size: if x == 0xfe {
            16
        } else {
            core::mem::size_of::<cmx_sink_config>()
        },
        overflow: if x & 0x70 == 0x70 {
            x as u32
        } else {
            (x & 1) as u32
        },
        open: x & 2 != 0,
        input: x & 0x0c == 0x0c,
        drop_unit: match x & 0xe0 {
            0x60 => 7,
            v if v & 0x80 != 0 => 1,
            _ => 0,
        },
        drop_notice: x & 0x10 != 0 && x & 0x70 != 0x70,
        timestamp: x & 0x20 != 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let n_sinks = b.small() % 11;
    let sinks: Vec<cmx_sink_config> = (0..n_sinks).map(|_| sink_config(b.small())).collect();
    let queue = match b.small() % 6 {
        0 => 0,
        1 => CMX_MAX_QUEUE_CAPACITY + 1,
        2 => usize::MAX,
        _ => 1 + b.small() * 7,
    };
    let replay = match b.small() % 4 {
        0 => 0,
        1 => queue.wrapping_add(1),
        _ => b.small().min(queue),
    };
    let config = cmx_mux_config {
        size: if n_sinks == 9 {
            0
        } else {
            core::mem::size_of::<cmx_mux_config>()
        },
        sinks: if b.small() == 0xff {
            null()
        } else {
            sinks.as_ptr()
        },
        n_sinks,
        queue_capacity: queue,
        replay_capacity: replay,
        // Mostly off or small; now and then over the maximum.
        coalesce_ns: match b.small() % 4 {
            0 => 0,
            1 => CMX_MAX_COALESCE_NS + 1,
            k => k as u64 * 50,
        },
        // Off, small, larger than the queues, or over the maximum.
        replay_head_capacity: match b.small() % 5 {
            0 | 1 => 0,
            2 => b.small(),
            3 => 1 + b.small() * 40,
            _ => CMX_MAX_QUEUE_CAPACITY + 1,
        },
    };
    let mut mux = null_mut();
    // SAFETY: every pointer is valid or NULL, as the C contract allows.
    let r = unsafe { cmx_mux_new(&config, &mut mux) };
    known(r);
    if r != cmx_result::Ok {
        assert!(mux.is_null());
        return;
    }
    let mut c = Caller {
        mux,
        n: n_sinks,
        withdrawn: None,
        notices: core::array::from_fn(|i| sinks.get(i).is_some_and(|s| s.drop_notice)),
        stamps: core::array::from_fn(|i| sinks.get(i).is_some_and(|s| s.timestamp)),
        head: config.replay_head_capacity > 0,
        config,
        written: false,
        in_flight: None,
        would_blocks: 0,
        writables: 0,
        turned_away: false,
        told_open: false,
        unpolled: 0,
        events_maybe_lost: false,
        dropping: [false; CMX_MAX_SINKS],
        offers: (0, 0, 0, 0),
    };
    let payload = [FILL; 512];
    let mut out = 0usize;
    let mut st = cmx_sink_stats::default();
    let mut t = cmx_transmit {
        sink: 0,
        data: null(),
        len: 0,
    };
    let mut mask = 0u32;
    let mut ev = cmx_frontend_event::None;
    let mut now = 0u64;
    let mut counters = cmx_mux_counters::default();
    let (mut pending, mut deadline) = (false, 0u64);
    while let Some(tag) = b.byte() {
        let sink = match b.small() {
            0xff => usize::MAX,
            x => x % (CMX_MAX_SINKS + 1),
        };
        let len = b.small() * 2;
        // SAFETY (every call below): `mux` is live; the other pointers are
        // valid or deliberately NULL.
        let r = match tag % 31 {
            26 => {
                let before = c.in_flight.and_then(|(i, _)| c.try_stats(i));
                let r = unsafe { cmx_mux_reset_head(mux) };
                // A sink whose head replay was cut (counted as dropped) had
                // its bytes out withdrawn.
                if let (Some((i, _)), Some(st)) = (c.in_flight, before) {
                    if c.stats(i).dropped != st.dropped {
                        c.withdraw(i);
                    }
                }
                c.may_queue_events();
                r
            }
            // The replay state round trip, as it is, or with bytes changed.
            27 => {
                c.import_fresh(&c.export(), true);
                cmx_result::Ok
            }
            28 => {
                let mut blob = c.export();
                for _ in 0..1 + len % 4 {
                    let at = (b.small() | b.small() << 8) % blob.len();
                    blob[at] ^= b.byte().unwrap_or(1) | 1;
                }
                c.import_fresh(&blob, false);
                cmx_result::Ok
            }
            // Arbitrary bytes from the input as a blob.
            29 => {
                let n = (len * 3).min(b.0.len());
                let (blob, rest) = b.0.split_at(n);
                b.0 = rest;
                c.import_fresh(blob, false);
                cmx_result::Ok
            }
            // Into this multiplexer: refused once output was written.
            30 => {
                let blob = c.export();
                let r = unsafe { cmx_mux_replay_import(mux, blob.as_ptr(), blob.len()) };
                let want = if c.written {
                    cmx_result::ReplayNotFresh
                } else {
                    cmx_result::Ok
                };
                assert_eq!(r, want);
                r
            }
            20 => c.attach(b.small()),
            21 => c.detach(sink, false),
            22 => c.detach(sink, true),
            23 if len == 0 => unsafe { cmx_mux_clear_input(mux) },
            23 => {
                let r = unsafe { cmx_mux_set_input(mux, sink) };
                let want = if c.attached(sink) {
                    cmx_result::Ok
                } else {
                    cmx_result::InvalidSink
                };
                assert_eq!(r, want);
                r
            }
            0 => c.write(len, None, &payload),
            1 => unsafe { cmx_mux_write(mux, null(), len, &mut out) },
            2 => unsafe { cmx_mux_write(mux, payload.as_ptr(), len, null_mut()) },
            3 => {
                c.may_queue_events();
                unsafe { cmx_mux_sink_writable(mux, sink) }
            }
            4 => {
                let event = tag as u32 / 24 % 4;
                if event == cmx_sink_event::Closed as u32 && sink < c.n {
                    // Closing a sink withdraws its bytes out with the caller.
                    c.withdraw(sink);
                }
                c.may_queue_events();
                unsafe { cmx_mux_sink_event(mux, sink, event) }
            }
            5 => unsafe { cmx_mux_input_room(mux, sink, len, &mut out) },
            6 => {
                let room = b.small();
                let r = unsafe { cmx_mux_input(mux, sink, len, room, &mut out) };
                if r == cmx_result::Ok {
                    assert!(out <= len.min(room));
                }
                r
            }
            7 => unsafe { cmx_mux_write_room(mux, &mut out) },
            8 => {
                now += b.small() as u64;
                c.write(len, Some(now), &payload)
            }
            9 => unsafe { cmx_mux_handle_timeout(mux, now) },
            10 if len == 0 => unsafe { cmx_mux_poll_timeout(mux, null_mut(), &mut deadline) },
            10 => {
                let r = unsafe { cmx_mux_poll_timeout(mux, &mut pending, &mut deadline) };
                assert_eq!(pending, deadline != 0);
                assert!(deadline <= now + config.coalesce_ns, "held past the window");
                r
            }
            11 => unsafe {
                cmx_mux_sink_stats(mux, sink, if len == 0 { null_mut() } else { &mut st })
            },
            12 if len == 0 => unsafe { cmx_mux_poll_transmit(mux, null_mut()) },
            12 => {
                let first = c.poll_transmit();
                // Asking again before the report hands out the same bytes.
                let again = c.poll_transmit();
                assert_eq!(
                    (first.sink, first.data, first.len),
                    (again.sink, again.data, again.len)
                );
                cmx_result::Ok
            }
            // The report, for the sink that was handed bytes or any other.
            13 | 14 => {
                let target = match (tag % 26, c.in_flight) {
                    (13, Some((s, _))) => s,
                    _ => sink,
                };
                let handed = c.in_flight.map_or(len, |f| f.1);
                c.transmitted(target, outcome(b.byte().unwrap_or(0), handed));
                cmx_result::Ok
            }
            15 if len == 0 => unsafe { cmx_mux_watch_mask(mux, null_mut()) },
            15 => unsafe { cmx_mux_watch_mask(mux, &mut mask) },
            16 if len == 0 => unsafe { cmx_mux_poll_event(mux, null_mut()) },
            16 if len < 64 => {
                // One event now, the rest later (or never).
                let r = unsafe { cmx_mux_poll_event(mux, &mut ev) };
                assert_eq!(r, cmx_result::Ok);
                c.saw(ev);
                r
            }
            16 => {
                c.poll_events();
                cmx_result::Ok
            }
            17 => {
                c.pump(&mut b, 1 + len);
                cmx_result::Ok
            }
            18 => unsafe {
                cmx_mux_lossless_backlog(mux, if len == 0 { null_mut() } else { &mut out })
            },
            19 if len == 0 => {
                // A NULL multiplexer is refused, not dereferenced, and the
                // out-parameter is left alone.
                t.len = 12345;
                let r = unsafe { cmx_mux_poll_transmit(null_mut(), &mut t) };
                assert_eq!((r, t.len), (cmx_result::NullParameter, 12345));
                r
            }
            24 if len < 64 => {
                c.poll_report();
                cmx_result::Ok
            }
            24 => {
                while c.poll_report() {}
                cmx_result::Ok
            }
            25 => unsafe { cmx_mux_stats(mux, if len == 0 { null_mut() } else { &mut counters }) },
            _ => {
                let mut open = false;
                unsafe { cmx_mux_frontend_open(mux, &mut open, &mut out) }
            }
        };
        known(r);
        c.check();
    }
    c.finish();
    // SAFETY: `mux` came from cmx_mux_new and is freed once.
    unsafe { cmx_mux_free(mux) };
});
