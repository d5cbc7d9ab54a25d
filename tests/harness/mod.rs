//! Shared plumbing for the integration tests that drive the C ABI.
//!
//! Everything here goes through the `extern "C"` functions of
//! `chardev_multiplex::ffi`, exactly as a C caller would: a `cmx_callbacks`
//! table of `extern "C"` functions, an opaque pointer to a [`Ctx`], and real
//! non-blocking socketpairs (or pipes) serviced by a small `poll(2)` loop.
//!
//! - [`Mux`]: owns a `cmx_mux` and its [`Ctx`]; thin wrappers over the calls.
//! - [`Rig`]: a [`Mux`] plus one socketpair per sink (our end is the sink fd
//!   the write callback writes to, the peer end is "the viewer"), and the
//!   poll loop ([`Rig::pump`], [`Rig::service`], [`Rig::drain`]).
//! - [`stream`], [`assert_bytes_eq`], [`assert_segments_of`]: sequence-numbered
//!   data so every check is byte-exact.

#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Once;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use chardev_multiplex::ffi::*;

// ---------------------------------------------------------------------------
// errno and fds
// ---------------------------------------------------------------------------

pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

pub fn set_errno(value: i32) {
    // SAFETY: the calling thread's errno location is always valid.
    unsafe { *libc::__errno_location() = value }
}

/// Writes to a reader that went away must fail with EPIPE, not kill the test.
pub fn ignore_sigpipe() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: installing SIG_IGN for SIGPIPE has no preconditions.
        let old = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        assert_ne!(old, libc::SIG_ERR);
    });
}

fn check(r: libc::c_int, what: &str) -> libc::c_int {
    assert!(r >= 0, "{what}: {}", std::io::Error::last_os_error());
    r
}

/// Adopts a raw fd just returned by a syscall.
pub fn own(fd: RawFd) -> OwnedFd {
    assert!(fd >= 0);
    // SAFETY: `fd` was just created by the caller and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `open(2)` with `flags | O_CLOEXEC` and mode 0600; panics with the path and errno on failure.
pub fn open_raw(path: &std::path::Path, flags: i32) -> OwnedFd {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path; the fd is adopted at once.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o600) };
    assert!(
        fd >= 0,
        "open {path:?}: {}",
        std::io::Error::last_os_error()
    );
    own(fd)
}

/// A connected `AF_UNIX` stream socketpair, close-on-exec, blocking.
pub fn socketpair() -> (OwnedFd, OwnedFd) {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two fds.
    check(
        unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        },
        "socketpair",
    );
    (own(fds[0]), own(fds[1]))
}

/// A pipe, close-on-exec, blocking: (read end, write end).
pub fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two fds.
    check(
        unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) },
        "pipe2",
    );
    (own(fds[0]), own(fds[1]))
}

pub fn set_nonblocking(fd: RawFd, on: bool) {
    // SAFETY: fcntl on an fd the caller holds.
    let fl = check(unsafe { libc::fcntl(fd, libc::F_GETFL) }, "F_GETFL");
    let fl = if on {
        fl | libc::O_NONBLOCK
    } else {
        fl & !libc::O_NONBLOCK
    };
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, fl) }, "F_SETFL");
}

fn sockopt(fd: RawFd, opt: libc::c_int) -> libc::c_int {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are valid for getsockopt's writes.
    check(
        unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        },
        "getsockopt",
    );
    v
}

/// Shrinks a socket's send and receive buffers to the kernel's minimum
/// (asking for 1 byte gets the floor). Returns (SO_SNDBUF, SO_RCVBUF) as set.
pub fn shrink_socket_buffers(fd: RawFd) -> (i32, i32) {
    for opt in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
        let one: libc::c_int = 1;
        // SAFETY: `one` is a valid c_int for setsockopt to read.
        check(
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    opt,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            },
            "setsockopt",
        );
    }
    (sockopt(fd, libc::SO_SNDBUF), sockopt(fd, libc::SO_RCVBUF))
}

/// Reads what is there without blocking (the fd is non-blocking) into `out`.
/// Returns false at end of file.
pub fn read_available(fd: RawFd, out: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 65536];
    loop {
        // SAFETY: `buf` is valid for `buf.len()` bytes of writes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        match n {
            0 => return false,
            n if n > 0 => out.extend_from_slice(&buf[..n as usize]),
            _ => match errno() {
                libc::EINTR => continue,
                libc::EAGAIN => return true,
                // A reset connection reads as end of file for a viewer.
                libc::ECONNRESET => return false,
                e => panic!("read fd {fd}: {}", std::io::Error::from_raw_os_error(e)),
            },
        }
    }
}

/// Writes all of `data` to a (blocking) fd.
pub fn write_all(fd: RawFd, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: `data` is valid for `data.len()` bytes.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        assert!(n > 0, "write fd {fd}: {}", std::io::Error::last_os_error());
        data = &data[n as usize..];
    }
}

// ---------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------

/// The first `len` bytes of the stream `00000000\n00000001\n...`: every
/// 9-byte record carries its own sequence number, so a lost, repeated or
/// reordered byte shows, and any 17 consecutive bytes say where they are.
pub fn stream(len: usize) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(len + 9);
    let mut k: u32 = 0;
    while out.len() < len {
        for shift in (0..8).rev() {
            out.push(HEX[((k >> (shift * 4)) & 0xf) as usize]);
        }
        out.push(b'\n');
        k += 1;
    }
    out.truncate(len);
    out
}

/// Asserts byte equality, reporting the first difference instead of dumping
/// megabytes.
#[track_caller]
pub fn assert_bytes_eq(what: &str, got: &[u8], want: &[u8]) {
    if got == want {
        return;
    }
    let first = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let show = |s: &[u8]| {
        let lo = first.saturating_sub(12);
        let hi = (first + 12).min(s.len());
        String::from_utf8_lossy(&s[lo.min(hi)..hi]).into_owned()
    };
    panic!(
        "{what}: got {} bytes, want {}; first difference at offset {first}: \
         got {:?}, want {:?}",
        got.len(),
        want.len(),
        show(got),
        show(want)
    );
}

/// Asserts that `got` is `stream` with zero or more runs cut out, that is, a
/// concatenation of increasing, non-overlapping slices of `stream`, and
/// returns those slices as (start, end) ranges. This is stronger than "an
/// in-order subsequence" (which any short string of hex digits would be).
#[track_caller]
pub fn assert_segments_of(what: &str, got: &[u8], stream: &[u8]) -> Vec<(usize, usize)> {
    let mut segs: Vec<(usize, usize)> = Vec::new();
    let (mut i, mut p) = (0usize, 0usize);
    while i < got.len() {
        if p < stream.len() && got[i] == stream[p] && !segs.is_empty() {
            i += 1;
            p += 1;
            segs.last_mut().unwrap().1 = p;
            continue;
        }
        // A gap (or the start): find where the next bytes of `got` continue,
        // with the longest window that still matches (windows of 17 or more
        // bytes hold a whole record, so they match in one place only).
        // A shorter window may match too early, which is harmless: the
        // search only ever moves forward, and the true place is further on.
        let found = [32usize, 17, 9, 4, 1].iter().find_map(|&w| {
            let win = &got[i..(i + w).min(got.len())];
            stream[p..]
                .windows(win.len())
                .position(|s| s == win)
                .map(|q| p + q)
        });
        let Some(q) = found else {
            panic!(
                "{what}: byte {i} of {} ({:?}...) does not continue the stream after offset {p}",
                got.len(),
                String::from_utf8_lossy(&got[i..(i + 18).min(got.len())])
            );
        };
        segs.push((q, q));
        p = q;
    }
    segs
}

/// Deterministic chunk sizes (xorshift), so failures reproduce.
#[derive(Clone, Debug)]
pub enum Chunks {
    Fixed(usize),
    /// Uniform-ish in 1..=max.
    Random {
        max: usize,
        state: u64,
    },
}

impl Chunks {
    pub fn random(max: usize) -> Chunks {
        Chunks::Random {
            max,
            state: 0x9E37_79B9_7F4A_7C15,
        }
    }

    pub fn next_len(&mut self) -> usize {
        match self {
            Chunks::Fixed(n) => *n,
            Chunks::Random { max, state } => {
                *state ^= *state << 13;
                *state ^= *state >> 7;
                *state ^= *state << 17;
                (*state % *max as u64) as usize + 1
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Sink stats
// ---------------------------------------------------------------------------

/// `offered == delivered + queued + dropped`, as documented.
#[track_caller]
pub fn assert_balanced(what: &str, st: &cmx_sink_stats) {
    assert_eq!(
        st.offered,
        st.delivered + st.queued + st.dropped,
        "{what}: offered != delivered + queued + dropped in {st:?}"
    );
}

pub const OPEN: u32 = cmx_sink_state::Open as u32;
pub const CLOSED: u32 = cmx_sink_state::Closed as u32;
pub const FAILED: u32 = cmx_sink_state::Failed as u32;

pub fn sink(overflow: cmx_overflow, open: bool, input: bool) -> cmx_sink_config {
    cmx_sink_config {
        overflow: overflow as u32,
        open,
        input,
    }
}

pub fn block() -> cmx_sink_config {
    sink(cmx_overflow::Block, true, false)
}

pub fn drop_sink() -> cmx_sink_config {
    sink(cmx_overflow::Drop, true, false)
}

// ---------------------------------------------------------------------------
// The callback context (the `opaque` pointer)
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// The multiplexer, through the C ABI
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// A multiplexer wired to socketpairs, and the poll loop
// ---------------------------------------------------------------------------

/// The far end of a sink: what a viewer (or a log file) would read.
pub struct Peer {
    pub fd: OwnedFd,
    /// Everything read so far from this connection.
    pub received: Vec<u8>,
    /// A paused peer is not read: its socket fills up.
    pub paused: bool,
    pub eof: bool,
    /// The sink's `delivered` counter when this peer was attached.
    pub base_delivered: u64,
}

pub struct Rig {
    pub mux: Mux,
    /// Our end of each sink's socketpair: the fd the write callback uses.
    pub ours: Vec<Option<OwnedFd>>,
    pub peers: Vec<Option<Peer>>,
    pub chunks: Chunks,
    /// CMX_RESULT_WOULD_BLOCK answers seen by [`Rig::pump`].
    pub would_blocks: u64,
    /// `frontend_writable` calls already acted upon.
    woken_seen: u64,
    /// The frontend got WOULD_BLOCK and was not woken since.
    pub blocked: bool,
    /// Shrink every new socketpair's buffers.
    pub tiny_buffers: bool,
}

/// What a poll entry stands for.
#[derive(Clone, Copy, Debug)]
enum Slot {
    Sink(usize),
    Peer(usize),
}

/// Every test gives up after this long instead of hanging: 10 s, or
/// `CMX_TEST_DEADLINE_SECS` (slow runs such as valgrind's set it higher).
pub fn deadline() -> Duration {
    let secs = std::env::var("CMX_TEST_DEADLINE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    Duration::from_secs(secs)
}

impl Rig {
    /// A multiplexer with a fresh socketpair for every sink that starts open.
    pub fn new(cfg: &Cfg) -> Rig {
        Rig::build(cfg, false)
    }

    pub fn with_tiny_buffers(cfg: &Cfg) -> Rig {
        Rig::build(cfg, true)
    }

    /// Like [`Rig::new`], with another callback table (for example a write
    /// callback that injects faults and then calls [`cb_sink_write`]).
    pub fn with_callbacks(cfg: &Cfg, cb: &cmx_callbacks) -> Rig {
        Rig::build_with(cfg, false, cb)
    }

    fn build(cfg: &Cfg, tiny_buffers: bool) -> Rig {
        Rig::build_with(cfg, tiny_buffers, &callbacks())
    }

    fn build_with(cfg: &Cfg, tiny_buffers: bool, cb: &cmx_callbacks) -> Rig {
        ignore_sigpipe();
        let n = cfg.sinks.len();
        let mux = Mux::with_callbacks(cfg, cb).unwrap_or_else(|r| panic!("cmx_mux_new: {r:?}"));
        let mut rig = Rig {
            mux,
            ours: (0..n).map(|_| None).collect(),
            peers: (0..n).map(|_| None).collect(),
            chunks: Chunks::random(1500),
            would_blocks: 0,
            woken_seen: 0,
            blocked: false,
            tiny_buffers,
        };
        for (i, s) in cfg.sinks.iter().enumerate() {
            if s.open {
                rig.attach(i);
            }
        }
        rig
    }

    /// Connects a new socketpair to sink `i` (the library is not told: send
    /// CMX_SINK_EVENT_OPENED for a sink that was closed).
    pub fn attach(&mut self, i: usize) {
        let (ours, theirs) = socketpair();
        set_nonblocking(ours.as_raw_fd(), true);
        set_nonblocking(theirs.as_raw_fd(), true);
        if self.tiny_buffers {
            shrink_socket_buffers(ours.as_raw_fd());
            shrink_socket_buffers(theirs.as_raw_fd());
        }
        self.mux.ctx.fds.borrow_mut()[i] = ours.as_raw_fd();
        self.ours[i] = Some(ours);
        self.peers[i] = Some(Peer {
            fd: theirs,
            received: Vec::new(),
            paused: false,
            eof: false,
            base_delivered: self.mux.stats(i).delivered,
        });
    }

    /// Makes `fd` (a regular file, or the write end of a pipe whose reader is
    /// somewhere else) sink `i`'s fd, with no peer to read it. The library is
    /// not told: send CMX_SINK_EVENT_OPENED for a sink that was closed.
    pub fn attach_fd(&mut self, i: usize, fd: OwnedFd) {
        self.mux.ctx.fds.borrow_mut()[i] = fd.as_raw_fd();
        self.ours[i] = Some(fd);
        self.peers[i] = None;
    }

    /// Reads everything that is already readable at sink `i`'s peer (all
    /// that was delivered to it so far) and returns what it has read in all.
    pub fn collect(&mut self, i: usize) -> &[u8] {
        let p = self.peers[i].as_mut().expect("no peer");
        if !p.eof && !read_available(p.fd.as_raw_fd(), &mut p.received) {
            p.eof = true;
        }
        &p.received
    }

    /// Closes the viewer's end of sink `i` (our end stays: writes get EPIPE).
    /// Returns what it had read.
    pub fn hang_up(&mut self, i: usize) -> Vec<u8> {
        self.peers[i].take().expect("no peer").received
    }

    /// Closes our end of sink `i` too, as a backend does after a hang-up.
    pub fn close_ours(&mut self, i: usize) {
        self.mux.ctx.fds.borrow_mut()[i] = -1;
        self.ours[i] = None;
    }

    pub fn peer(&self, i: usize) -> &Peer {
        self.peers[i].as_ref().expect("no peer")
    }

    pub fn received(&self, i: usize) -> &[u8] {
        &self.peer(i).received
    }

    pub fn pause(&mut self, i: usize, paused: bool) {
        self.peers[i].as_mut().expect("no peer").paused = paused;
    }

    fn note_woken(&mut self) {
        let w = self.mux.ctx.woken.get();
        if w != self.woken_seen {
            self.woken_seen = w;
            self.blocked = false;
        }
    }

    /// One round of the event loop: poll the watched sinks for POLLOUT and
    /// the unpaused peers for POLLIN, for at most `timeout_ms`, and act on
    /// what is ready. Returns whether anything was.
    pub fn service(&mut self, timeout_ms: i32) -> bool {
        let mut pfds = Vec::new();
        let mut slots = Vec::new();
        for i in 0..self.mux.n_sinks() {
            if self.mux.ctx.watching(i) {
                match &self.ours[i] {
                    Some(fd) => {
                        pfds.push(libc::pollfd {
                            fd: fd.as_raw_fd(),
                            events: libc::POLLOUT,
                            revents: 0,
                        });
                        slots.push(Slot::Sink(i));
                    }
                    // Watched but nothing to poll: tell it so that it fails.
                    None => {
                        assert_eq!(self.mux.sink_writable(i), cmx_result::Ok);
                    }
                }
            }
            if let Some(p) = &self.peers[i] {
                if !p.paused && !p.eof {
                    pfds.push(libc::pollfd {
                        fd: p.fd.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    });
                    slots.push(Slot::Peer(i));
                }
            }
        }
        // SAFETY: `pfds` is a valid array of `pfds.len()` pollfds.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
        if n < 0 && errno() == libc::EINTR {
            return false;
        }
        check(n, "poll");
        let mut any = false;
        for (pfd, slot) in pfds.iter().zip(&slots) {
            if pfd.revents == 0 {
                continue;
            }
            any = true;
            match *slot {
                Slot::Sink(i) => {
                    assert_eq!(self.mux.sink_writable(i), cmx_result::Ok);
                }
                Slot::Peer(i) => {
                    let p = self.peers[i].as_mut().unwrap();
                    if !read_available(p.fd.as_raw_fd(), &mut p.received) {
                        p.eof = true;
                    }
                }
            }
        }
        self.note_woken();
        any
    }

    /// Offers `data` through `cmx_mux_write` in chunks, servicing the sockets
    /// between writes. After CMX_RESULT_WOULD_BLOCK it does not write again
    /// until `frontend_writable` is called (a frontend that waits for its
    /// wake-up, as QEMU's does). Returns how many bytes were accepted: all of
    /// them, or fewer if the writer stayed blocked for `stall` with nothing
    /// happening.
    pub fn pump(&mut self, data: &[u8], stall: Duration) -> usize {
        let start = Instant::now();
        let mut off = 0;
        let mut idle_since = Instant::now();
        while off < data.len() {
            assert!(
                start.elapsed() < deadline(),
                "pump: no end after {:?} ({off} of {} bytes accepted)",
                deadline(),
                data.len()
            );
            if !self.blocked {
                let len = self.chunks.next_len().min(data.len() - off);
                let (r, acc) = self.mux.write(&data[off..off + len]);
                match r {
                    cmx_result::Ok => {
                        assert!(acc >= 1 && acc <= len, "accepted {acc} of {len}");
                        off += acc;
                    }
                    cmx_result::WouldBlock => {
                        assert_eq!(acc, 0, "WOULD_BLOCK but accepted {acc}");
                        self.would_blocks += 1;
                        self.blocked = true;
                        self.note_woken();
                        idle_since = Instant::now();
                    }
                    r => panic!("cmx_mux_write: {r:?}"),
                }
            }
            let timeout = if self.blocked { 20 } else { 0 };
            if self.service(timeout) || !self.blocked {
                idle_since = Instant::now();
            } else if idle_since.elapsed() >= stall {
                return off;
            }
        }
        off
    }

    /// Like [`Rig::pump`] but everything must be accepted within [`deadline()`].
    #[track_caller]
    pub fn pump_all(&mut self, data: &[u8]) {
        let n = self.pump(data, deadline());
        assert_eq!(n, data.len(), "the writer stayed blocked");
    }

    /// Services the sockets until every open sink with an unpaused peer has
    /// an empty queue and its peer has read all that was delivered to it.
    #[track_caller]
    pub fn drain(&mut self) {
        let start = Instant::now();
        loop {
            let done = (0..self.mux.n_sinks()).all(|i| {
                let st = self.mux.stats(i);
                match &self.peers[i] {
                    Some(p) if !p.paused && st.state == OPEN => {
                        st.queued == 0 && p.received.len() as u64 == st.delivered - p.base_delivered
                    }
                    _ => true,
                }
            });
            if done {
                return;
            }
            if start.elapsed() > deadline() {
                let st: Vec<_> = (0..self.mux.n_sinks()).map(|i| self.mux.stats(i)).collect();
                panic!("drain: no end after {:?}; stats {st:#?}", deadline());
            }
            self.service(20);
        }
    }

    /// Hands every peer to a thread that reads it (blocking) until end of
    /// file and returns what it read. Use [`Rig::flush_and_close`] to end them.
    pub fn spawn_readers(&mut self) -> Vec<Option<JoinHandle<Vec<u8>>>> {
        self.peers
            .iter_mut()
            .map(|p| {
                let p = p.take()?;
                set_nonblocking(p.fd.as_raw_fd(), false);
                Some(std::thread::spawn(move || {
                    let mut out = p.received;
                    let mut buf = vec![0u8; 65536];
                    loop {
                        // SAFETY: `buf` is valid for its length.
                        let n = unsafe {
                            libc::read(p.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
                        };
                        if n < 0 && errno() == libc::EINTR {
                            continue;
                        }
                        assert!(n >= 0, "reader: {}", std::io::Error::last_os_error());
                        if n == 0 {
                            return out;
                        }
                        out.extend_from_slice(&buf[..n as usize]);
                    }
                }))
            })
            .collect()
    }

    /// Services the watched sinks until no sink has anything queued, then
    /// closes our ends so that reader threads see end of file.
    pub fn flush_and_close(&mut self) {
        let start = Instant::now();
        while (0..self.mux.n_sinks()).any(|i| self.mux.stats(i).queued > 0) {
            assert!(start.elapsed() < deadline(), "flush: no end");
            self.service(20);
        }
        for i in 0..self.mux.n_sinks() {
            self.close_ours(i);
        }
    }
}
