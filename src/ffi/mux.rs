//! `cmx_mux`: the multiplexer behind an opaque pointer.

use core::cell::{Cell, UnsafeCell};
use core::ffi::c_void;

use static_assertions::const_assert_eq;

use super::boundary::{guard, try_ffi};
use super::result::cmx_result;
use crate::engine::{
    Config, ConfigError, FrontendEvent, Io, Mux, Overflow, SinkConfig, SinkEvent, SinkState,
    SinkStats, WriteOutcome, DEFAULT_QUEUE_CAPACITY, MAX_COALESCE_NS, MAX_QUEUE_CAPACITY,
    MAX_SINKS,
};

/// Most sinks one multiplexer serves.
pub const CMX_MAX_SINKS: usize = 8;
/// What `cmx_mux_input_room()` allows per read from a sink that is not the
/// input source (its input is discarded).
pub const CMX_INPUT_DISCARD_CHUNK: usize = 4096;
/// The queue capacity to use when the user gave none (64 KiB).
pub const CMX_DEFAULT_QUEUE_CAPACITY: usize = 65536;
/// The largest queue (and replay) capacity accepted (64 MiB).
pub const CMX_MAX_QUEUE_CAPACITY: usize = 67108864;
/// The coalescing window to use when the user gave none (1 ms): below what a
/// person notices, and at a 16550's 0.2-2 MiB/s some 200-2000 bytes per write.
pub const CMX_DEFAULT_COALESCE_NS: u64 = 1000000;
/// The longest coalescing window accepted (100 ms).
pub const CMX_MAX_COALESCE_NS: u64 = 100000000;
const_assert_eq!(CMX_MAX_SINKS, MAX_SINKS);
const_assert_eq!(CMX_MAX_COALESCE_NS, MAX_COALESCE_NS);
const_assert_eq!(CMX_INPUT_DISCARD_CHUNK, crate::engine::DISCARD_CHUNK);
const_assert_eq!(CMX_DEFAULT_QUEUE_CAPACITY, DEFAULT_QUEUE_CAPACITY);
const_assert_eq!(CMX_MAX_QUEUE_CAPACITY, MAX_QUEUE_CAPACITY);

/// What a sink does when its queue is full.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cmx_overflow {
    /// Lossless: the frontend is told "would block" until the sink drains.
    Block = 0,
    /// Never slows the frontend: the oldest queued bytes are discarded, counted.
    Drop = 1,
}

/// An event a sink reports with `cmx_mux_sink_event()`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cmx_sink_event {
    /// The sink connected (a viewer connected, a file was opened).
    Opened = 0,
    /// The sink disconnected; its queue is discarded (counted as dropped).
    Closed = 1,
    /// The sink sent a break; forwarded only from the input source.
    Break = 2,
}

/// An event delivered to the frontend through `frontend_event`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cmx_frontend_event {
    /// The first sink opened (or sinks were open when the mux was created).
    Opened = 0,
    /// The last open sink closed.
    Closed = 1,
    /// The input source sent a break.
    Break = 2,
}

/// A sink's state, as reported in `cmx_sink_stats`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cmx_sink_state {
    /// Connected and receiving output.
    Open = 0,
    /// Not connected: receives nothing, never blocks.
    Closed = 1,
    /// A write failed with a hard error: receives nothing until it reopens.
    Failed = 2,
}

/// One sink's configuration.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct cmx_sink_config {
    /// A `cmx_overflow` value.
    pub overflow: u32,
    /// Whether the sink is already open when the multiplexer is created.
    pub open: bool,
    /// Whether this sink is the input source (at most one may be).
    pub input: bool,
}

/// A multiplexer's configuration. Borrowed by `cmx_mux_new()` for the call only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct cmx_mux_config {
    /// `n_sinks` sink configurations; sink indexes are positions in this array.
    pub sinks: *const cmx_sink_config,
    /// 1 to `CMX_MAX_SINKS`.
    pub n_sinks: usize,
    /// Bytes each sink may queue: 1 to `CMX_MAX_QUEUE_CAPACITY`.
    pub queue_capacity: usize,
    /// Bytes of recent output replayed to a sink when it opens; 0 turns replay
    /// off; at most `queue_capacity`.
    pub replay_capacity: usize,
    /// Coalescing window of `cmx_mux_write_at()`, in the units of its `now`
    /// (nanoseconds by convention): 0 (off) to `CMX_MAX_COALESCE_NS`.
    /// `cmx_mux_write()` never coalesces.
    pub coalesce_ns: u64,
}

/// Writes `len` bytes (never 0) at `data` to sink `sink`. Returns how many
/// bytes the sink took (0 to `len`), `-EAGAIN` when it would block (call
/// `cmx_mux_sink_writable()` when it is writable again), or `-errno` for a hard
/// error, which marks the sink failed. `-EINTR` is retried. `data` is valid
/// only during the call.
pub type cmx_sink_write_fn = Option<
    unsafe extern "C" fn(opaque: *mut c_void, sink: usize, data: *const u8, len: usize) -> isize,
>;
/// Start (`enable` true) or stop watching sink `sink` for writability. The
/// watch is level-triggered: while it is enabled, call
/// `cmx_mux_sink_writable()` whenever the sink is writable; a one-shot
/// mechanism (a GSource that is removed when it fires) must be re-armed by the
/// caller after each `cmx_mux_sink_writable()` as long as no `enable` false
/// came. Calls alternate: never two `true` or two `false` in a row.
pub type cmx_sink_watch_fn =
    Option<unsafe extern "C" fn(opaque: *mut c_void, sink: usize, enable: bool)>;
/// The frontend, which got `CMX_RESULT_WOULD_BLOCK`, may write again.
pub type cmx_frontend_writable_fn = Option<unsafe extern "C" fn(opaque: *mut c_void)>;
/// Deliver `len` (> 0) input bytes to the frontend; never more than the
/// `frontend_room` given to `cmx_mux_input()`. `data` is valid only during the call.
pub type cmx_frontend_input_fn =
    Option<unsafe extern "C" fn(opaque: *mut c_void, data: *const u8, len: usize)>;
/// Deliver an event to the frontend.
pub type cmx_frontend_event_fn =
    Option<unsafe extern "C" fn(opaque: *mut c_void, event: cmx_frontend_event)>;

/// The caller's side of the multiplexer. Copied by `cmx_mux_new()`. Only
/// `sink_write` and `sink_watch` are required; a NULL frontend callback means
/// "not interested". Every
/// callback gets the `opaque` pointer given to `cmx_mux_new()`, runs on the
/// thread that called into the multiplexer, and must not call any
/// `cmx_mux_*` function on the same multiplexer.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct cmx_callbacks {
    pub sink_write: cmx_sink_write_fn,
    pub sink_watch: cmx_sink_watch_fn,
    pub frontend_writable: cmx_frontend_writable_fn,
    pub frontend_input: cmx_frontend_input_fn,
    pub frontend_event: cmx_frontend_event_fn,
}

/// A sink's statistics; byte counts are totals since the multiplexer was
/// created, and `offered == delivered + queued + dropped` always holds.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct cmx_sink_stats {
    /// A `cmx_sink_state` value.
    pub state: u32,
    /// A `cmx_overflow` value.
    pub overflow: u32,
    /// Bytes handed to the sink while open, live output plus replay.
    pub offered: u64,
    /// Bytes the sink accepted.
    pub delivered: u64,
    /// Bytes waiting in its queue now.
    pub queued: u64,
    /// Bytes discarded: overflow of a `drop` queue, or queued when it closed or failed.
    pub dropped: u64,
    /// Bytes of history replayed to it (part of `offered`).
    pub replayed: u64,
    /// Largest queue length seen.
    pub queue_high_water: u64,
    /// Times its full queue turned the frontend away.
    pub backpressure_events: u64,
    /// Hard write errors.
    pub write_errors: u64,
    /// Input bytes from it passed to the frontend.
    pub input_forwarded: u64,
    /// Input bytes from it discarded (it is not the input source).
    pub input_discarded: u64,
    /// errno of the latest hard write error, 0 if none.
    pub last_errno: i32,
}

/// A multiplexer: one frontend, 1 to `CMX_MAX_SINKS` sinks. Opaque.
pub struct cmx_mux {
    busy: Cell<bool>,
    poisoned: Cell<bool>,
    inner: UnsafeCell<Inner>,
}

pub(super) struct Inner {
    pub(super) engine: Mux,
    pub(super) io: CallbackIo,
}

pub(super) struct CallbackIo {
    write: unsafe extern "C" fn(*mut c_void, usize, *const u8, usize) -> isize,
    cb: cmx_callbacks,
    opaque: *mut c_void,
}

/// How often a write that returns -EINTR is retried before it counts as EAGAIN.
const EINTR_RETRIES: usize = 16;

impl Io for CallbackIo {
    fn write(&mut self, sink: usize, data: &[u8]) -> WriteOutcome {
        for _ in 0..EINTR_RETRIES {
            // SAFETY: `write` is the caller's non-NULL function pointer; `data`
            // is valid for `data.len()` bytes for the duration of the call.
            let r = unsafe { (self.write)(self.opaque, sink, data.as_ptr(), data.len()) };
            if r >= 0 {
                return match usize::try_from(r) {
                    Ok(n) if n <= data.len() => WriteOutcome::Written(n),
                    // The callback claims more than it was given: a bug on
                    // its side; stop trusting this sink.
                    _ => WriteOutcome::Failed(libc::EINVAL),
                };
            }
            let errno = r
                .checked_neg()
                .and_then(|e| i32::try_from(e).ok())
                .unwrap_or(libc::EINVAL);
            match errno {
                libc::EINTR => continue,
                e if e == libc::EAGAIN || e == libc::EWOULDBLOCK => {
                    return WriteOutcome::WouldBlock
                }
                e => return WriteOutcome::Failed(e),
            }
        }
        WriteOutcome::WouldBlock
    }

    fn watch_writable(&mut self, sink: usize, enable: bool) {
        if let Some(f) = self.cb.sink_watch {
            // SAFETY: a non-NULL callback supplied by the caller, with its opaque.
            unsafe { f(self.opaque, sink, enable) }
        }
    }

    fn frontend_writable(&mut self) {
        if let Some(f) = self.cb.frontend_writable {
            // SAFETY: a non-NULL callback supplied by the caller, with its opaque.
            unsafe { f(self.opaque) }
        }
    }

    fn frontend_input(&mut self, data: &[u8]) {
        if let Some(f) = self.cb.frontend_input {
            // SAFETY: a non-NULL callback; `data` is valid for its length during the call.
            unsafe { f(self.opaque, data.as_ptr(), data.len()) }
        }
    }

    fn frontend_event(&mut self, event: FrontendEvent) {
        if let Some(f) = self.cb.frontend_event {
            let ev = match event {
                FrontendEvent::Opened => cmx_frontend_event::Opened,
                FrontendEvent::Closed => cmx_frontend_event::Closed,
                FrontendEvent::Break => cmx_frontend_event::Break,
            };
            // SAFETY: a non-NULL callback supplied by the caller, with its opaque.
            unsafe { f(self.opaque, ev) }
        }
    }
}

/// Borrows the multiplexer for one call: NULL, poisoned and re-entrant calls
/// are refused, and a panic poisons it.
///
/// # Safety
/// `mux` is NULL or a pointer returned by `cmx_mux_new()` and not yet freed.
pub(super) unsafe fn with_mux(
    mux: *const cmx_mux,
    f: impl FnOnce(&mut Inner) -> cmx_result,
) -> cmx_result {
    // SAFETY: per this function's contract the pointer is NULL or live; only
    // shared access is taken here (the flags are Cells).
    let Some(m) = (unsafe { mux.as_ref() }) else {
        return cmx_result::NullParameter;
    };
    if m.poisoned.get() {
        return cmx_result::Panic;
    }
    if m.busy.replace(true) {
        return cmx_result::ReentrantCall;
    }
    // SAFETY: `busy` was false and is now true, so no other `&mut Inner` exists
    // (single-threaded use is part of the API contract) until we reset it.
    let inner = unsafe { &mut *m.inner.get() };
    let r = guard(|| f(inner));
    if r == cmx_result::Panic {
        m.poisoned.set(true);
    }
    m.busy.set(false);
    r
}

/// Writes through `out` if it is not NULL-checked already.
pub(super) fn put<T>(out: *mut T, value: T) {
    // SAFETY: every caller checked `out` for NULL; the C caller guarantees it
    // points to writable memory for a `T`.
    unsafe { out.write(value) }
}

fn config_from_c(config: &cmx_mux_config) -> Result<Config, cmx_result> {
    if config.n_sinks == 0 {
        return Err(cmx_result::ConfigNoSinks);
    }
    if config.n_sinks > MAX_SINKS {
        return Err(cmx_result::ConfigTooManySinks);
    }
    if config.sinks.is_null() {
        return Err(cmx_result::NullParameter);
    }
    // SAFETY: non-NULL, and the caller guarantees `n_sinks` (checked <= 8)
    // readable elements, borrowed for this call only.
    let sinks = unsafe { core::slice::from_raw_parts(config.sinks, config.n_sinks) };
    let mut input = None;
    let mut out = Vec::with_capacity(sinks.len());
    for (i, s) in sinks.iter().enumerate() {
        let overflow = match s.overflow {
            x if x == cmx_overflow::Block as u32 => Overflow::Block,
            x if x == cmx_overflow::Drop as u32 => Overflow::Drop,
            _ => return Err(cmx_result::ConfigUnknownOverflow),
        };
        if s.input && input.replace(i).is_some() {
            return Err(cmx_result::ConfigMultipleInputs);
        }
        out.push(SinkConfig {
            overflow,
            open: s.open,
        });
    }
    let cfg = Config {
        sinks: out,
        input,
        queue_capacity: config.queue_capacity,
        replay_capacity: config.replay_capacity,
        coalesce_ns: config.coalesce_ns,
    };
    cfg.validate().map_err(config_error)?;
    Ok(cfg)
}

fn config_error(e: ConfigError) -> cmx_result {
    match e {
        ConfigError::NoSinks => cmx_result::ConfigNoSinks,
        ConfigError::TooManySinks(_) => cmx_result::ConfigTooManySinks,
        // Not reachable from C: the input comes from a flag on an existing sink.
        ConfigError::InputOutOfRange { .. } => cmx_result::InvalidSink,
        ConfigError::ZeroQueueCapacity => cmx_result::ConfigZeroQueue,
        ConfigError::QueueCapacityTooLarge(_) => cmx_result::ConfigQueueTooLarge,
        ConfigError::ReplayTooLarge { .. } => cmx_result::ConfigReplayTooLarge,
        ConfigError::CoalesceTooLong(_) => cmx_result::ConfigCoalesceTooLong,
    }
}

/// Creates a multiplexer.
///
/// `config` and `callbacks` are read during the call only (the callbacks are
/// copied). `opaque` is passed to every callback and is never dereferenced by
/// the library; it must stay valid until `cmx_mux_free()`. If any sink starts
/// open, `frontend_event(CMX_FRONTEND_EVENT_OPENED)` is called before this
/// returns. On success `*out` receives the new multiplexer, owned by the
/// caller until it passes it to `cmx_mux_free()`; on failure `*out` is set to
/// NULL and a `CMX_RESULT_CONFIG_*` (or `CMX_RESULT_NULL_PARAMETER`) code says
/// what was wrong.
///
/// # Safety
/// Pointer arguments are NULL or valid for the accesses described above.
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_new(
    config: *const cmx_mux_config,
    callbacks: *const cmx_callbacks,
    opaque: *mut c_void,
    out: *mut *mut cmx_mux,
) -> cmx_result {
    guard(|| {
        if out.is_null() {
            return cmx_result::NullParameter;
        }
        put(out, core::ptr::null_mut());
        // SAFETY: NULL or valid for reads per the contract; borrowed for this call.
        let (Some(config), Some(callbacks)) =
            (unsafe { config.as_ref() }, unsafe { callbacks.as_ref() })
        else {
            return cmx_result::NullParameter;
        };
        let Some(write) = callbacks.sink_write else {
            return cmx_result::ConfigNoWriteCallback;
        };
        if callbacks.sink_watch.is_none() {
            return cmx_result::ConfigNoWatchCallback;
        }
        let cfg = try_ffi!(config_from_c(config));
        let mut io = CallbackIo {
            write,
            cb: *callbacks,
            opaque,
        };
        let engine = try_ffi!(Mux::new(cfg, &mut io).map_err(config_error));
        let mux = Box::new(cmx_mux {
            busy: Cell::new(false),
            poisoned: Cell::new(false),
            inner: UnsafeCell::new(Inner { engine, io }),
        });
        put(out, Box::into_raw(mux));
        cmx_result::Ok
    })
}

/// Frees a multiplexer and everything it queued. No callback is called.
/// NULL is accepted and does nothing. Refused with
/// `CMX_RESULT_REENTRANT_CALL` (and nothing freed) from inside a callback.
///
/// # Safety
/// `mux` is NULL or a pointer from `cmx_mux_new()` not yet freed; it must not
/// be used after this returns `CMX_RESULT_OK`.
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_free(mux: *mut cmx_mux) -> cmx_result {
    guard(|| {
        // SAFETY: NULL or live per the contract.
        let Some(m) = (unsafe { mux.as_ref() }) else {
            return cmx_result::Ok;
        };
        if m.busy.get() {
            return cmx_result::ReentrantCall;
        }
        // SAFETY: the pointer came from Box::into_raw in cmx_mux_new and is
        // not in use (not busy); ownership returns to Rust and it is dropped.
        drop(unsafe { Box::from_raw(mux) });
        cmx_result::Ok
    })
}

/// Offers `len` bytes of frontend output. On `CMX_RESULT_OK`, `*accepted`
/// (1 to `len`, or 0 when `len` is 0) leading bytes were taken: each has been
/// written or queued for every open sink; the caller offers the rest later.
/// On `CMX_RESULT_WOULD_BLOCK` nothing was taken and `frontend_writable` will
/// be called when it may be. `data` may be NULL only when `len` is 0.
///
/// # Safety
/// `mux` is live; `data` is valid for `len` bytes; `accepted` is writable.
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_write(
    mux: *mut cmx_mux,
    data: *const u8,
    len: usize,
    accepted: *mut usize,
) -> cmx_result {
    // SAFETY: the same contract as this function's.
    unsafe { write_impl(mux, data, len, accepted, None) }
}

/// `cmx_mux_write()` (`now` None) or `cmx_mux_write_at()`.
///
/// # Safety
/// As for `cmx_mux_write()`.
pub(super) unsafe fn write_impl(
    mux: *mut cmx_mux,
    data: *const u8,
    len: usize,
    accepted: *mut usize,
    now: Option<u64>,
) -> cmx_result {
    if accepted.is_null() || (data.is_null() && len > 0) {
        return cmx_result::NullParameter;
    }
    put(accepted, 0);
    let data: &[u8] = if len == 0 {
        &[]
    } else {
        // SAFETY: non-NULL and valid for `len` bytes per the contract, borrowed for the call.
        unsafe { core::slice::from_raw_parts(data, len) }
    };
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux(mux, |m| {
            let r = match now {
                None => m.engine.write(&mut m.io, data),
                Some(now) => m.engine.write_at(&mut m.io, data, now),
            };
            match r {
                Ok(n) => {
                    put(accepted, n);
                    cmx_result::Ok
                }
                Err(_) => cmx_result::WouldBlock,
            }
        })
    }
}

/// Stores in `*room` how many bytes `cmx_mux_write()` would accept now
/// (`SIZE_MAX` when no open `block` sink limits it).
///
/// # Safety
/// `mux` is live; `room` is writable.
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_write_room(mux: *const cmx_mux, room: *mut usize) -> cmx_result {
    if room.is_null() {
        return cmx_result::NullParameter;
    }
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux(mux, |m| {
            put(room, m.engine.write_room());
            cmx_result::Ok
        })
    }
}

/// Sink `sink`, which the library asked to watch, is writable: its queue is
/// flushed. Spurious calls are harmless.
///
/// # Safety
/// `mux` is live.
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_sink_writable(mux: *mut cmx_mux, sink: usize) -> cmx_result {
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux(mux, |m| match m.engine.sink_writable(&mut m.io, sink) {
            Ok(()) => cmx_result::Ok,
            Err(_) => cmx_result::InvalidSink,
        })
    }
}

/// Sink `sink` opened, closed or sent a break (`event` is a `cmx_sink_event`).
/// Opening a sink replays recent output to it if replay is on.
///
/// # Safety
/// `mux` is live.
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_sink_event(
    mux: *mut cmx_mux,
    sink: usize,
    event: u32,
) -> cmx_result {
    let event = match event {
        x if x == cmx_sink_event::Opened as u32 => SinkEvent::Opened,
        x if x == cmx_sink_event::Closed as u32 => SinkEvent::Closed,
        x if x == cmx_sink_event::Break as u32 => SinkEvent::Break,
        _ => return cmx_result::InvalidEvent,
    };
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux(mux, |m| match m.engine.sink_event(&mut m.io, sink, event) {
            Ok(()) => cmx_result::Ok,
            Err(_) => cmx_result::InvalidSink,
        })
    }
}

/// Stores in `*room` how many bytes the caller should read from sink `sink`
/// now, given that the frontend can take `frontend_room` bytes: that many for
/// the input source, `CMX_INPUT_DISCARD_CHUNK` for any other sink (its input
/// is discarded).
///
/// # Safety
/// `mux` is live; `room` is writable.
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_input_room(
    mux: *const cmx_mux,
    sink: usize,
    frontend_room: usize,
    room: *mut usize,
) -> cmx_result {
    if room.is_null() {
        return cmx_result::NullParameter;
    }
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux(mux, |m| match m.engine.input_room(sink, frontend_room) {
            Ok(n) => {
                put(room, n);
                cmx_result::Ok
            }
            Err(_) => cmx_result::InvalidSink,
        })
    }
}

/// Input read from sink `sink`. From the input source, up to `frontend_room`
/// bytes go to `frontend_input`; from any other sink all of it is discarded
/// and counted. `*consumed` receives how many bytes of `data` were used; the
/// rest is still the caller's. A caller that cannot keep unused bytes (a QEMU
/// chardev backend cannot push input back) reads no more than
/// `cmx_mux_input_room()` allowed and passes the same `frontend_room` here.
/// `data` may be NULL only when `len` is 0.
///
/// # Safety
/// `mux` is live; `data` is valid for `len` bytes; `consumed` is writable.
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_input(
    mux: *mut cmx_mux,
    sink: usize,
    data: *const u8,
    len: usize,
    frontend_room: usize,
    consumed: *mut usize,
) -> cmx_result {
    if consumed.is_null() || (data.is_null() && len > 0) {
        return cmx_result::NullParameter;
    }
    put(consumed, 0);
    let data: &[u8] = if len == 0 {
        &[]
    } else {
        // SAFETY: non-NULL and valid for `len` bytes per the contract, borrowed for the call.
        unsafe { core::slice::from_raw_parts(data, len) }
    };
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux(mux, |m| {
            match m.engine.input(&mut m.io, sink, data, frontend_room) {
                Ok(n) => {
                    put(consumed, n);
                    cmx_result::Ok
                }
                Err(_) => cmx_result::InvalidSink,
            }
        })
    }
}

/// Copies sink `sink`'s statistics into `*out`.
///
/// # Safety
/// `mux` is live; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_sink_stats(
    mux: *const cmx_mux,
    sink: usize,
    out: *mut cmx_sink_stats,
) -> cmx_result {
    if out.is_null() {
        return cmx_result::NullParameter;
    }
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux(mux, |m| match m.engine.stats(sink) {
            Ok(st) => {
                put(out, stats_to_c(&st));
                cmx_result::Ok
            }
            Err(_) => cmx_result::InvalidSink,
        })
    }
}

/// Stores in `*open` whether the frontend was last told OPENED (a sink is
/// connected), and in `*n_sinks` (if not NULL) the number of sinks.
///
/// # Safety
/// `mux` is live; `open` is writable; `n_sinks` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_frontend_open(
    mux: *const cmx_mux,
    open: *mut bool,
    n_sinks: *mut usize,
) -> cmx_result {
    if open.is_null() {
        return cmx_result::NullParameter;
    }
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux(mux, |m| {
            put(open, m.engine.frontend_open());
            if !n_sinks.is_null() {
                put(n_sinks, m.engine.sink_count());
            }
            cmx_result::Ok
        })
    }
}

fn stats_to_c(st: &SinkStats) -> cmx_sink_stats {
    cmx_sink_stats {
        state: match st.state {
            SinkState::Open => cmx_sink_state::Open,
            SinkState::Closed => cmx_sink_state::Closed,
            SinkState::Failed => cmx_sink_state::Failed,
        } as u32,
        overflow: match st.overflow {
            Overflow::Block => cmx_overflow::Block,
            Overflow::Drop => cmx_overflow::Drop,
        } as u32,
        offered: st.offered,
        delivered: st.delivered,
        queued: st.queued,
        dropped: st.dropped,
        replayed: st.replayed,
        queue_high_water: st.queue_high_water,
        backpressure_events: st.backpressure_events,
        write_errors: st.write_errors,
        input_forwarded: st.input_forwarded,
        input_discarded: st.input_discarded,
        last_errno: st.last_errno,
    }
}
