//! [`Mux`]: a `cmx_mux` owned by a test, with thin wrappers over the C calls.

use super::*;

/// A multiplexer configuration, owned (the C struct borrows the sink array).
#[derive(Clone, Debug)]
pub struct Cfg {
    pub sinks: Vec<cmx_sink_config>,
    pub queue_capacity: usize,
    pub replay_capacity: usize,
    pub replay_head_capacity: usize,
    pub coalesce_ns: u64,
}

impl Cfg {
    pub fn new(sinks: &[cmx_sink_config]) -> Cfg {
        Cfg {
            sinks: sinks.to_vec(),
            queue_capacity: CMX_DEFAULT_QUEUE_CAPACITY,
            replay_capacity: 0,
            replay_head_capacity: 0,
            coalesce_ns: 0,
        }
    }

    pub fn queue(mut self, n: usize) -> Cfg {
        self.queue_capacity = n;
        self
    }

    pub fn replay(mut self, n: usize) -> Cfg {
        self.replay_capacity = n;
        self
    }

    pub fn head(mut self, n: usize) -> Cfg {
        self.replay_head_capacity = n;
        self
    }

    pub fn coalesce(mut self, ns: u64) -> Cfg {
        self.coalesce_ns = ns;
        self
    }

    /// The C view; valid while `self` is.
    pub fn as_c(&self) -> cmx_mux_config {
        cmx_mux_config {
            size: std::mem::size_of::<cmx_mux_config>(),
            sinks: if self.sinks.is_empty() {
                std::ptr::null()
            } else {
                self.sinks.as_ptr()
            },
            n_sinks: self.sinks.len(),
            queue_capacity: self.queue_capacity,
            replay_capacity: self.replay_capacity,
            coalesce_ns: self.coalesce_ns,
            replay_head_capacity: self.replay_head_capacity,
        }
    }
}

/// A `cmx_mux` and its caller's side; freed on drop. Every wrapper of a call
/// that can give the multiplexer work ends with [`Mux::settle`], so a test
/// reads as what the sinks and the frontend see after each call.
pub struct Mux {
    pub raw: *mut cmx_mux,
    pub ctx: Ctx,
    /// Writes what `cmx_mux_poll_transmit()` hands out ([`sink_write`]).
    pub write_fn: WriteFn,
}

/// [`Mux::settle`] gives up after this many transmits in one go: a
/// multiplexer that never runs dry is a bug, not a long stream.
const MAX_TRANSMITS: usize = 1 << 20;

impl Mux {
    pub fn new(cfg: &Cfg) -> Result<Mux, cmx_result> {
        Mux::with_writer(cfg, sink_write)
    }

    pub fn with_writer(cfg: &Cfg, write_fn: WriteFn) -> Result<Mux, cmx_result> {
        let c = cfg.as_c();
        // A non-NULL garbage value, to see that failure leaves it alone.
        let mut raw: *mut cmx_mux = std::ptr::NonNull::dangling().as_ptr();
        // SAFETY: every pointer is valid for the call.
        let r = unsafe { cmx_mux_new(&c, &mut raw) };
        if r != cmx_result::Ok {
            assert_eq!(
                raw,
                std::ptr::NonNull::dangling().as_ptr(),
                "cmx_mux_new failed ({r:?}) but wrote *out"
            );
            return Err(r);
        }
        assert!(!raw.is_null());
        let mut m = Mux {
            raw,
            ctx: Ctx::new(cfg.sinks.len()),
            write_fn,
        };
        m.settle();
        Ok(m)
    }

    pub fn n_sinks(&self) -> usize {
        self.ctx.fds.len()
    }

    /// Does what the library asks for after a call, as a C caller's loop
    /// does (the Rust reference is `engine::drive::pump`): writes what
    /// `cmx_mux_poll_transmit()` hands out until it runs dry, reporting each
    /// write with `cmx_mux_transmitted()`; watches the sinks in
    /// `cmx_mux_watch_mask()`; takes the frontend's events from
    /// `cmx_mux_poll_event()`.
    pub fn settle(&mut self) {
        let n = self.n_sinks();
        for _ in 0..MAX_TRANSMITS {
            let mut t = cmx_transmit {
                sink: usize::MAX,
                data: std::ptr::NonNull::dangling().as_ptr(),
                len: usize::MAX,
            };
            // SAFETY: live mux, writable out.
            let polled = unsafe { cmx_mux_poll_transmit(self.raw, &mut t) };
            assert_eq!(polled, cmx_result::Ok);
            if t.len == 0 {
                assert!(t.data.is_null(), "len 0 but data {:?}", t.data);
                return self.sync_watches_and_events();
            }
            assert!(t.sink < n && !t.data.is_null(), "{t:?}");
            // SAFETY: the library keeps `len` bytes at `data` until the next
            // call on the multiplexer, which is the report below.
            let data = unsafe { std::slice::from_raw_parts(t.data, t.len) };
            let r = (self.write_fn)(&mut self.ctx, t.sink, data);
            // SAFETY: live mux.
            let res = unsafe { cmx_mux_transmitted(self.raw, t.sink, r) };
            assert_eq!(res, cmx_result::Ok, "transmitted({}, {r})", t.sink);
        }
        panic!("cmx_mux_poll_transmit still has work after {MAX_TRANSMITS} transmits");
    }

    fn sync_watches_and_events(&mut self) {
        let mut mask = u32::MAX;
        // SAFETY: live mux, writable out.
        let masked = unsafe { cmx_mux_watch_mask(self.raw, &mut mask) };
        assert_eq!(masked, cmx_result::Ok);
        assert_eq!(mask >> self.n_sinks(), 0, "watch mask {mask:#x}");
        for (k, w) in self.ctx.watching.iter_mut().enumerate() {
            let want = mask & (1 << k) != 0;
            if *w != want {
                *w = want;
                self.ctx.watch_calls += 1;
            }
        }
        loop {
            let mut ev = cmx_frontend_event::Break;
            // SAFETY: live mux, writable out.
            let evented = unsafe { cmx_mux_poll_event(self.raw, &mut ev) };
            assert_eq!(evented, cmx_result::Ok);
            match ev {
                cmx_frontend_event::None => break,
                cmx_frontend_event::Writable => self.ctx.woken += 1,
                ev => self.ctx.events.push(ev),
            }
        }
        loop {
            let mut r = cmx_sink_report {
                kind: u32::MAX,
                ..cmx_sink_report::default()
            };
            // SAFETY: live mux, writable out.
            let reported = unsafe { cmx_mux_poll_sink_report(self.raw, &mut r) };
            assert_eq!(reported, cmx_result::Ok);
            if r.kind == cmx_sink_report_kind::None as u32 {
                assert_eq!(r, cmx_sink_report::default(), "NONE with fields set");
                return;
            }
            assert!(
                cmx_sink_report_kind::try_from(r.kind).is_ok(),
                "unknown report kind in {r:?}"
            );
            self.ctx.reports.push(r);
        }
    }

    /// `cmx_mux_stats()`.
    pub fn counters(&self) -> cmx_mux_counters {
        let mut c = cmx_mux_counters::default();
        // SAFETY: live mux, writable out.
        let r = unsafe { cmx_mux_stats(self.raw, &mut c) };
        assert_eq!(r, cmx_result::Ok);
        c
    }

    /// Panics unless `r` is OK, then settles.
    #[track_caller]
    fn ok_then_settle(&mut self, what: &str, r: cmx_result) {
        assert_eq!(r, cmx_result::Ok, "{what}");
        self.settle();
    }

    pub fn write(&mut self, data: &[u8]) -> (cmx_result, usize) {
        let mut acc = usize::MAX;
        // SAFETY: live mux, valid buffers.
        let r = unsafe { cmx_mux_write(self.raw, data.as_ptr(), data.len(), &mut acc) };
        self.settle();
        (r, acc)
    }

    pub fn write_at_wall(&mut self, data: &[u8], now: u64, wall_ns: u64) -> (cmx_result, usize) {
        let mut acc = usize::MAX;
        // SAFETY: live mux, valid buffers.
        let r = unsafe {
            cmx_mux_write_at_wall(self.raw, data.as_ptr(), data.len(), now, wall_ns, &mut acc)
        };
        self.settle();
        (r, acc)
    }

    /// `cmx_mux_reset_head()`.
    #[track_caller]
    pub fn reset_head(&mut self) {
        // SAFETY: live mux.
        let r = unsafe { cmx_mux_reset_head(self.raw) };
        self.ok_then_settle("reset_head", r);
    }

    /// `cmx_mux_replay_export()`, size query then blob.
    pub fn replay_export(&self) -> Vec<u8> {
        let mut needed = usize::MAX;
        // SAFETY: live mux; NULL with length 0 asks for the size.
        let sized =
            unsafe { cmx_mux_replay_export(self.raw, std::ptr::null_mut(), 0, &mut needed) };
        assert_eq!(sized, cmx_result::Ok, "replay_export size");
        let mut blob = vec![0u8; needed];
        let mut again = usize::MAX;
        // SAFETY: live mux; `blob` is writable for its length.
        let r =
            unsafe { cmx_mux_replay_export(self.raw, blob.as_mut_ptr(), blob.len(), &mut again) };
        assert_eq!((r, again), (cmx_result::Ok, needed), "replay_export");
        blob
    }

    /// `cmx_mux_replay_import()`.
    pub fn replay_import(&mut self, blob: &[u8]) -> cmx_result {
        // SAFETY: live mux; `blob` is readable for its length.
        let r = unsafe { cmx_mux_replay_import(self.raw, blob.as_ptr(), blob.len()) };
        self.settle();
        r
    }

    pub fn write_at(&mut self, data: &[u8], now: u64) -> (cmx_result, usize) {
        let mut acc = usize::MAX;
        // SAFETY: live mux, valid buffers.
        let r = unsafe { cmx_mux_write_at(self.raw, data.as_ptr(), data.len(), now, &mut acc) };
        self.settle();
        (r, acc)
    }

    /// `cmx_mux_poll_timeout()`: when held output must be released, if any.
    pub fn poll_timeout(&self) -> Option<u64> {
        let (mut pending, mut at) = (true, u64::MAX);
        // SAFETY: live mux, writable outs.
        let r = unsafe { cmx_mux_poll_timeout(self.raw, &mut pending, &mut at) };
        assert_eq!(r, cmx_result::Ok);
        if !pending {
            assert_eq!(at, 0, "no deadline pending, but *deadline is {at}");
        }
        pending.then_some(at)
    }

    #[track_caller]
    pub fn handle_timeout(&mut self, now: u64) {
        // SAFETY: live mux.
        let r = unsafe { cmx_mux_handle_timeout(self.raw, now) };
        self.ok_then_settle("handle_timeout", r);
    }

    pub fn write_room(&self) -> usize {
        let mut room = 0;
        // SAFETY: live mux, writable out.
        let r = unsafe { cmx_mux_write_room(self.raw, &mut room) };
        assert_eq!(r, cmx_result::Ok);
        room
    }

    pub fn lossless_backlog(&self) -> usize {
        let mut bytes = usize::MAX;
        // SAFETY: live mux, writable out.
        let r = unsafe { cmx_mux_lossless_backlog(self.raw, &mut bytes) };
        assert_eq!(r, cmx_result::Ok);
        bytes
    }

    #[track_caller]
    pub fn sink_writable(&mut self, sink: usize) {
        // SAFETY: live mux.
        let r = unsafe { cmx_mux_sink_writable(self.raw, sink) };
        self.ok_then_settle("sink_writable", r);
    }

    pub fn event(&mut self, sink: usize, event: cmx_sink_event) -> cmx_result {
        // SAFETY: live mux.
        let r = unsafe { cmx_mux_sink_event(self.raw, sink, event.into()) };
        self.settle();
        r
    }

    pub fn stats(&self, sink: usize) -> cmx_sink_stats {
        let mut st = cmx_sink_stats::default();
        // SAFETY: live mux, writable out.
        let r = unsafe { cmx_mux_sink_stats(self.raw, sink, &mut st) };
        assert_eq!(r, cmx_result::Ok, "stats({sink})");
        st
    }

    pub fn input_room(&self, sink: usize, frontend_room: usize) -> usize {
        let mut room = usize::MAX;
        // SAFETY: live mux, writable out.
        let r = unsafe { cmx_mux_input_room(self.raw, sink, frontend_room, &mut room) };
        assert_eq!(r, cmx_result::Ok);
        room
    }

    /// `data` was read from `sink`: tells the library, delivers the leading
    /// bytes it names to the frontend (into `ctx.guest`) and returns how many.
    #[track_caller]
    pub fn input(&mut self, sink: usize, data: &[u8], frontend_room: usize) -> usize {
        let mut forward = usize::MAX;
        // SAFETY: live mux, writable out.
        let r = unsafe { cmx_mux_input(self.raw, sink, data.len(), frontend_room, &mut forward) };
        self.ok_then_settle("input", r);
        assert!(
            forward <= data.len().min(frontend_room),
            "forward {forward} of {} with frontend_room {frontend_room}",
            data.len()
        );
        if forward > 0 {
            self.ctx.input_calls.push(forward);
            self.ctx.guest.extend_from_slice(&data[..forward]);
        }
        forward
    }

    /// The index `cmx_mux_attach()` will give the next sink: the lowest
    /// released one, else a new one.
    pub fn next_slot(&self) -> usize {
        (0..self.n_sinks())
            .find(|&i| self.try_stats(i).is_none())
            .unwrap_or_else(|| self.n_sinks())
    }

    /// A sink's statistics, or None for a released (or unused) index.
    pub fn try_stats(&self, sink: usize) -> Option<cmx_sink_stats> {
        let mut st = cmx_sink_stats::default();
        // SAFETY: live mux, writable out.
        match unsafe { cmx_mux_sink_stats(self.raw, sink, &mut st) } {
            cmx_result::Ok => Some(st),
            r => {
                assert_eq!(r, cmx_result::InvalidSink, "stats({sink})");
                None
            }
        }
    }

    /// `cmx_mux_attach()`; `fd` is what its writes go to. Settles (an open
    /// sink is written its replay at once).
    pub fn attach_sink(&mut self, cfg: &cmx_sink_config, fd: RawFd) -> Result<usize, cmx_result> {
        let slot = self.next_slot();
        if slot >= self.n_sinks() && slot < CMX_MAX_SINKS {
            self.ctx.fds.resize(slot + 1, -1);
            self.ctx.watching.resize(slot + 1, false);
        }
        if slot < CMX_MAX_SINKS {
            self.ctx.fds[slot] = fd;
        }
        let mut sink = usize::MAX;
        // SAFETY: live mux, valid config, writable out.
        let r = unsafe { cmx_mux_attach(self.raw, cfg, &mut sink) };
        self.settle();
        match r {
            cmx_result::Ok => {
                assert_eq!(sink, slot, "not the lowest free index");
                Ok(sink)
            }
            r => {
                if let Some(unused) = self.ctx.fds.get_mut(slot) {
                    *unused = -1;
                }
                Err(r)
            }
        }
    }

    /// `cmx_mux_detach()`: the backlog left to write.
    pub fn detach(&mut self, sink: usize) -> Result<usize, cmx_result> {
        let mut backlog = usize::MAX;
        // SAFETY: live mux, writable out.
        let r = unsafe { cmx_mux_detach(self.raw, sink, &mut backlog) };
        self.settle();
        (r == cmx_result::Ok).then_some(backlog).ok_or(r)
    }

    /// `cmx_mux_release()`: the sink's final statistics. Its fd is no
    /// longer written.
    pub fn release(&mut self, sink: usize) -> Result<cmx_sink_stats, cmx_result> {
        let mut last = cmx_sink_stats::default();
        // SAFETY: live mux, writable out.
        let r = unsafe { cmx_mux_release(self.raw, sink, &mut last) };
        self.settle();
        if r == cmx_result::Ok {
            self.ctx.fds[sink] = -1;
        }
        (r == cmx_result::Ok).then_some(last).ok_or(r)
    }

    /// `cmx_mux_set_input()`, or `cmx_mux_clear_input()` for None.
    pub fn set_input(&mut self, sink: Option<usize>) -> cmx_result {
        // SAFETY: live mux.
        let r = unsafe {
            match sink {
                Some(i) => cmx_mux_set_input(self.raw, i),
                None => cmx_mux_clear_input(self.raw),
            }
        };
        self.settle();
        r
    }

    pub fn frontend_open(&self) -> bool {
        let mut open = false;
        let mut n = 0usize;
        // SAFETY: live mux, writable outs.
        let r = unsafe { cmx_mux_frontend_open(self.raw, &mut open, &mut n) };
        assert_eq!(r, cmx_result::Ok);
        assert_eq!(n, self.n_sinks());
        open
    }
}

impl Drop for Mux {
    fn drop(&mut self) {
        // SAFETY: `raw` came from cmx_mux_new and is freed once, here.
        unsafe {
            cmx_mux_free(self.raw);
        }
    }
}
