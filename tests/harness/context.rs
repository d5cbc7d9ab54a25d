//! The callback context (the `opaque` pointer) and the `extern "C"` callbacks.

use super::*;

/// What the callbacks see and record. Only shared references are ever taken
/// (everything is a Cell or RefCell), so the test may look at it between
/// calls while the library holds the raw pointer.
#[derive(Default)]
pub struct Ctx {
    /// The fd the write callback writes to, per sink (-1: none).
    pub fds: RefCell<Vec<RawFd>>,
    /// What `sink_watch` last said, per sink.
    pub watching: RefCell<Vec<bool>>,
    pub watch_calls: Cell<u64>,
    /// Watch calls that did not change anything.
    pub redundant_watch_calls: Cell<u64>,
    /// `frontend_writable` calls.
    pub woken: Cell<u64>,
    /// Everything `frontend_input` delivered: the guest's input.
    pub guest: RefCell<Vec<u8>>,
    /// Length of each `frontend_input` call.
    pub input_calls: RefCell<Vec<usize>>,
    /// The `frontend_room` of the `cmx_mux_input` call in progress.
    pub input_limit: Cell<usize>,
    pub events: RefCell<Vec<cmx_frontend_event>>,
    pub write_calls: Cell<u64>,
    /// Writes that took fewer bytes than offered (but some).
    pub short_writes: Cell<u64>,
    pub eagain: Cell<u64>,
    /// (sink, errno) of every hard write error returned to the library.
    pub write_errors: RefCell<Vec<(usize, i32)>>,
    /// Broken promises seen inside callbacks (a panic there would abort).
    pub violations: RefCell<Vec<String>>,
    /// When set, the write callback calls back into this multiplexer and
    /// records what each call returned.
    pub reenter: Cell<Option<*mut cmx_mux>>,
    pub reenter_results: RefCell<Vec<(&'static str, cmx_result)>>,
}

impl Ctx {
    fn violation(&self, s: String) {
        self.violations.borrow_mut().push(s);
    }

    pub fn fd(&self, sink: usize) -> RawFd {
        self.fds.borrow().get(sink).copied().unwrap_or(-1)
    }

    pub fn watching(&self, sink: usize) -> bool {
        self.watching.borrow()[sink]
    }
}

/// # Safety
/// `opaque` is the `Ctx` given to `cmx_mux_new`, alive for the mux's lifetime.
unsafe fn ctx<'a>(opaque: *mut c_void) -> &'a Ctx {
    // SAFETY: per the contract above; only shared references are created.
    unsafe { &*(opaque as *const Ctx) }
}

pub unsafe extern "C" fn cb_sink_write(
    opaque: *mut c_void,
    sink: usize,
    data: *const u8,
    len: usize,
) -> isize {
    // SAFETY: the library passes back our opaque pointer.
    let c = unsafe { ctx(opaque) };
    c.write_calls.set(c.write_calls.get() + 1);
    if len == 0 || data.is_null() {
        c.violation(format!("sink_write({sink}, {data:?}, {len})"));
    }
    // Taken for the duration, so that a call the library wrongly lets
    // through does not recurse forever.
    if let Some(m) = c.reenter.take() {
        let mut room = 0usize;
        let mut acc = 0usize;
        let mut st = cmx_sink_stats::default();
        // SAFETY: `m` is the live multiplexer that is calling us. The
        // read-only call goes first: if the library wrongly lets it through,
        // the calls that would change the multiplexer under its own feet are
        // not made.
        let first = unsafe { cmx_mux_write_room(m, &mut room) };
        c.reenter_results.borrow_mut().push(("write_room", first));
        if first != cmx_result::ReentrantCall {
            c.reenter.set(Some(m));
            return -(libc::EIO as isize);
        }
        // SAFETY: as above; each of these is refused without effect.
        let r = unsafe {
            [
                ("write", cmx_mux_write(m, b"x".as_ptr(), 1, &mut acc)),
                ("sink_writable", cmx_mux_sink_writable(m, sink)),
                (
                    "sink_event",
                    cmx_mux_sink_event(m, sink, cmx_sink_event::Closed as u32),
                ),
                ("sink_stats", cmx_mux_sink_stats(m, sink, &mut st)),
                ("free", cmx_mux_free(m)),
            ]
        };
        c.reenter_results.borrow_mut().extend(r);
        c.reenter.set(Some(m));
    }
    let fd = c.fd(sink);
    // SAFETY: the library guarantees `data` is valid for `len` bytes.
    let n = unsafe { libc::write(fd, data.cast(), len) };
    if n < 0 {
        let e = errno();
        if e == libc::EAGAIN {
            c.eagain.set(c.eagain.get() + 1);
        } else if e != libc::EINTR {
            c.write_errors.borrow_mut().push((sink, e));
        }
        return -(e as isize);
    }
    if (n as usize) < len {
        c.short_writes.set(c.short_writes.get() + 1);
    }
    n
}

pub unsafe extern "C" fn cb_sink_watch(opaque: *mut c_void, sink: usize, enable: bool) {
    // SAFETY: the library passes back our opaque pointer.
    let c = unsafe { ctx(opaque) };
    c.watch_calls.set(c.watch_calls.get() + 1);
    let mut w = c.watching.borrow_mut();
    match w.get_mut(sink) {
        Some(slot) => {
            if *slot == enable {
                c.redundant_watch_calls
                    .set(c.redundant_watch_calls.get() + 1);
            }
            *slot = enable;
        }
        None => c.violation(format!("sink_watch({sink}) out of range")),
    }
}

pub unsafe extern "C" fn cb_frontend_writable(opaque: *mut c_void) {
    // SAFETY: the library passes back our opaque pointer.
    let c = unsafe { ctx(opaque) };
    c.woken.set(c.woken.get() + 1);
}

pub unsafe extern "C" fn cb_frontend_input(opaque: *mut c_void, data: *const u8, len: usize) {
    // SAFETY: the library passes back our opaque pointer.
    let c = unsafe { ctx(opaque) };
    if len == 0 || data.is_null() || len > c.input_limit.get() {
        c.violation(format!(
            "frontend_input({data:?}, {len}) with frontend_room {}",
            c.input_limit.get()
        ));
        if data.is_null() {
            return;
        }
    }
    c.input_calls.borrow_mut().push(len);
    // SAFETY: the library guarantees `data` is valid for `len` bytes.
    let bytes = unsafe { std::slice::from_raw_parts(data, len) };
    c.guest.borrow_mut().extend_from_slice(bytes);
}

pub unsafe extern "C" fn cb_frontend_event(opaque: *mut c_void, event: cmx_frontend_event) {
    // SAFETY: the library passes back our opaque pointer.
    let c = unsafe { ctx(opaque) };
    c.events.borrow_mut().push(event);
}

/// A callback table with every callback set.
pub fn callbacks() -> cmx_callbacks {
    cmx_callbacks {
        sink_write: Some(cb_sink_write),
        sink_watch: Some(cb_sink_watch),
        frontend_writable: Some(cb_frontend_writable),
        frontend_input: Some(cb_frontend_input),
        frontend_event: Some(cb_frontend_event),
    }
}
