//! [`Mux`]: a `cmx_mux` owned by a test, with thin wrappers over the C calls.

use super::*;

/// A multiplexer configuration, owned (the C struct borrows the sink array).
#[derive(Clone, Debug)]
pub struct Cfg {
    pub sinks: Vec<cmx_sink_config>,
    pub queue_capacity: usize,
    pub replay_capacity: usize,
    pub coalesce_ns: u64,
}

impl Cfg {
    pub fn new(sinks: &[cmx_sink_config]) -> Cfg {
        Cfg {
            sinks: sinks.to_vec(),
            queue_capacity: CMX_DEFAULT_QUEUE_CAPACITY,
            replay_capacity: 0,
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

    pub fn coalesce(mut self, ns: u64) -> Cfg {
        self.coalesce_ns = ns;
        self
    }

    /// The C view; valid while `self` is.
    pub fn as_c(&self) -> cmx_mux_config {
        cmx_mux_config {
            sinks: if self.sinks.is_empty() {
                std::ptr::null()
            } else {
                self.sinks.as_ptr()
            },
            n_sinks: self.sinks.len(),
            queue_capacity: self.queue_capacity,
            replay_capacity: self.replay_capacity,
            coalesce_ns: self.coalesce_ns,
        }
    }
}

/// A `cmx_mux` and the context its callbacks get; freed on drop.
pub struct Mux {
    pub raw: *mut cmx_mux,
    pub ctx: Box<Ctx>,
    n: usize,
}

impl Mux {
    pub fn new(cfg: &Cfg) -> Result<Mux, cmx_result> {
        Mux::with_callbacks(cfg, &callbacks())
    }

    pub fn with_callbacks(cfg: &Cfg, cb: &cmx_callbacks) -> Result<Mux, cmx_result> {
        let n = cfg.sinks.len();
        let ctx = Box::new(Ctx {
            fds: RefCell::new(vec![-1; n]),
            watching: RefCell::new(vec![false; n]),
            ..Ctx::default()
        });
        let c = cfg.as_c();
        // A non-NULL garbage value, to see that failure sets it to NULL.
        let mut raw: *mut cmx_mux = std::ptr::NonNull::dangling().as_ptr();
        let opaque = &*ctx as *const Ctx as *mut c_void;
        // SAFETY: every pointer is valid for the call; `ctx` outlives the mux
        // (it is dropped after `cmx_mux_free` in `Drop`).
        let r = unsafe { cmx_mux_new(&c, cb, opaque, &mut raw) };
        if r != cmx_result::Ok {
            assert!(
                raw.is_null(),
                "cmx_mux_new failed ({r:?}) but *out is not NULL"
            );
            return Err(r);
        }
        assert!(!raw.is_null());
        Ok(Mux { raw, ctx, n })
    }

    pub fn n_sinks(&self) -> usize {
        self.n
    }

    pub fn write(&mut self, data: &[u8]) -> (cmx_result, usize) {
        let mut acc = usize::MAX;
        // SAFETY: live mux, valid buffers.
        let r = unsafe { cmx_mux_write(self.raw, data.as_ptr(), data.len(), &mut acc) };
        (r, acc)
    }

    pub fn write_at(&mut self, data: &[u8], now: u64) -> (cmx_result, usize) {
        let mut acc = usize::MAX;
        // SAFETY: live mux, valid buffers.
        let r = unsafe { cmx_mux_write_at(self.raw, data.as_ptr(), data.len(), now, &mut acc) };
        (r, acc)
    }

    /// `cmx_mux_flush_deadline()`: when held output must be flushed, if any.
    pub fn flush_deadline(&self) -> Option<u64> {
        let (mut pending, mut at) = (true, u64::MAX);
        // SAFETY: live mux, writable outs.
        let r = unsafe { cmx_mux_flush_deadline(self.raw, &mut pending, &mut at) };
        assert_eq!(r, cmx_result::Ok);
        if !pending {
            assert_eq!(at, 0, "no deadline pending, but *deadline is {at}");
        }
        pending.then_some(at)
    }

    pub fn flush(&mut self, now: u64) {
        // SAFETY: live mux.
        assert_eq!(unsafe { cmx_mux_flush(self.raw, now) }, cmx_result::Ok);
    }

    pub fn write_room(&self) -> usize {
        let mut room = 0;
        // SAFETY: live mux, writable out.
        let r = unsafe { cmx_mux_write_room(self.raw, &mut room) };
        assert_eq!(r, cmx_result::Ok);
        room
    }

    pub fn sink_writable(&mut self, sink: usize) -> cmx_result {
        // SAFETY: live mux.
        unsafe { cmx_mux_sink_writable(self.raw, sink) }
    }

    pub fn event(&mut self, sink: usize, event: cmx_sink_event) -> cmx_result {
        // SAFETY: live mux.
        unsafe { cmx_mux_sink_event(self.raw, sink, event as u32) }
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

    pub fn input(&mut self, sink: usize, data: &[u8], frontend_room: usize) -> usize {
        let mut consumed = usize::MAX;
        self.ctx.input_limit.set(frontend_room);
        // SAFETY: live mux, valid buffers.
        let r = unsafe {
            cmx_mux_input(
                self.raw,
                sink,
                data.as_ptr(),
                data.len(),
                frontend_room,
                &mut consumed,
            )
        };
        assert_eq!(r, cmx_result::Ok);
        consumed
    }

    pub fn frontend_open(&self) -> bool {
        let mut open = false;
        let mut n = 0usize;
        // SAFETY: live mux, writable outs.
        let r = unsafe { cmx_mux_frontend_open(self.raw, &mut open, &mut n) };
        assert_eq!(r, cmx_result::Ok);
        assert_eq!(n, self.n);
        open
    }

    /// Asserts that no callback saw a broken promise.
    #[track_caller]
    pub fn assert_no_violations(&self) {
        let v = self.ctx.violations.borrow();
        assert!(v.is_empty(), "callback contract violations: {v:?}");
    }
}

impl Drop for Mux {
    fn drop(&mut self) {
        // SAFETY: `raw` came from cmx_mux_new and is freed once, here.
        let r = unsafe { cmx_mux_free(self.raw) };
        if !std::thread::panicking() {
            assert_eq!(r, cmx_result::Ok);
        }
    }
}
