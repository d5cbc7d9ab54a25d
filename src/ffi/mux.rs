//! `cmx_mux`: the multiplexer behind an opaque pointer; creation, freeing,
//! statistics.

use core::cell::Cell;

use static_assertions::const_assert_eq;

use super::boundary::{guard, try_ffi};
use super::enums::{cmx_drop_unit, cmx_overflow, cmx_sink_state};
use super::result::cmx_result;
use crate::engine::{
    Config, ConfigError, DropUnit, Mux, Overflow, SinkConfig, SinkState, SinkStats,
    DEFAULT_QUEUE_CAPACITY, MAX_COALESCE_NS, MAX_QUEUE_CAPACITY, MAX_SINKS,
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
// A watch mask has one bit per sink.
static_assertions::const_assert!(CMX_MAX_SINKS <= 32);

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
    /// A `cmx_drop_unit` value: what a `drop` sink discards (ignored for `block`).
    pub drop_unit: u32,
    /// Whether a `drop` sink that catches up after dropping gets one notice
    /// line, `\r\n[multiplex: N bytes dropped]\r\n` (counted in `notices`
    /// and `notice_bytes`, not in `offered`/`delivered`). Refused on `block`.
    pub drop_notice: bool,
}

/// A multiplexer's configuration. Borrowed by `cmx_mux_new()` for the call only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct cmx_mux_config {
    /// `n_sinks` sink configurations; sink indexes are positions in this array.
    pub sinks: *const cmx_sink_config,
    /// 1 to `CMX_MAX_SINKS`.
    pub n_sinks: usize,
    /// Bytes each sink may queue: 1 to `CMX_MAX_QUEUE_CAPACITY`. Also the
    /// most one `cmx_mux_write()` accepts.
    pub queue_capacity: usize,
    /// Bytes of recent output replayed to a sink when it opens; 0 turns replay
    /// off; at most `queue_capacity`.
    pub replay_capacity: usize,
    /// Coalescing window of `cmx_mux_write_at()`, in the units of its `now`
    /// (nanoseconds by convention): 0 (off) to `CMX_MAX_COALESCE_NS`.
    /// `cmx_mux_write()` never coalesces.
    pub coalesce_ns: u64,
}

/// A sink's statistics; byte counts are totals since the multiplexer was
/// created, and `offered == delivered + queued + dropped` always holds.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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
    /// Drop episodes: times it started dropping after having caught up.
    pub drop_episodes: u64,
    /// Drop notices written in full.
    pub notices: u64,
    /// Bytes of drop notices written (not part of `offered`/`delivered`).
    pub notice_bytes: u64,
}

/// A multiplexer: one frontend, 1 to `CMX_MAX_SINKS` sinks. Opaque. It never
/// calls out: the caller pushes events in and pulls work out.
pub struct cmx_mux {
    poisoned: Cell<bool>,
    engine: Mux,
}

/// Runs `f` on the multiplexer for one call that changes it: NULL and
/// poisoned multiplexers are refused, and a panic poisons it.
///
/// # Safety
/// `mux` is NULL or a pointer returned by `cmx_mux_new()` and not yet freed,
/// and no other call on it runs at the same time (the API's contract).
pub(super) unsafe fn with_mux(
    mux: *mut cmx_mux,
    f: impl FnOnce(&mut Mux) -> cmx_result,
) -> cmx_result {
    // SAFETY: per this function's contract the pointer is NULL or live and
    // not used by anyone else during the call; the engine never calls out,
    // so this `&mut` is the only reference while it lives.
    let Some(m) = (unsafe { mux.as_mut() }) else {
        return cmx_result::NullParameter;
    };
    if m.poisoned.get() {
        return cmx_result::Panic;
    }
    let r = guard(|| f(&mut m.engine));
    if r == cmx_result::Panic {
        m.poisoned.set(true);
    }
    r
}

/// [`with_mux`] for a call that only reads the multiplexer.
///
/// # Safety
/// As for [`with_mux`].
pub(super) unsafe fn with_mux_ref(
    mux: *const cmx_mux,
    f: impl FnOnce(&Mux) -> cmx_result,
) -> cmx_result {
    // SAFETY: NULL or live per the contract; shared access only.
    let Some(m) = (unsafe { mux.as_ref() }) else {
        return cmx_result::NullParameter;
    };
    if m.poisoned.get() {
        return cmx_result::Panic;
    }
    let r = guard(|| f(&m.engine));
    if r == cmx_result::Panic {
        m.poisoned.set(true);
    }
    r
}

/// Writes `value` through `out`.
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
        if s.input && input.replace(i).is_some() {
            return Err(cmx_result::ConfigMultipleInputs);
        }
        out.push(sink_from_c(s)?);
    }
    Ok(Config {
        sinks: out,
        input,
        queue_capacity: config.queue_capacity,
        replay_capacity: config.replay_capacity,
        coalesce_ns: config.coalesce_ns,
    })
}

/// One sink's configuration, checked.
pub(super) fn sink_from_c(s: &cmx_sink_config) -> Result<SinkConfig, cmx_result> {
    let overflow = match cmx_overflow::try_from(s.overflow) {
        Ok(cmx_overflow::Block) => Overflow::Block,
        Ok(cmx_overflow::Drop) => Overflow::Drop,
        Err(_) => return Err(cmx_result::ConfigUnknownOverflow),
    };
    let drop_unit = match cmx_drop_unit::try_from(s.drop_unit) {
        Ok(cmx_drop_unit::Bytes) => DropUnit::Bytes,
        Ok(cmx_drop_unit::Lines) => DropUnit::Lines,
        Err(_) => return Err(cmx_result::ConfigUnknownDropUnit),
    };
    let config = SinkConfig {
        overflow,
        open: s.open,
        drop_unit,
        drop_notice: s.drop_notice,
    };
    config.validate(0).map_err(config_error)?;
    Ok(config)
}

pub(super) fn config_error(e: ConfigError) -> cmx_result {
    match e {
        ConfigError::NoSinks => cmx_result::ConfigNoSinks,
        ConfigError::TooManySinks(_) => cmx_result::ConfigTooManySinks,
        // Not reachable from C: the input comes from a flag on an existing sink.
        ConfigError::InputOutOfRange { .. } => cmx_result::InvalidSink,
        ConfigError::ZeroQueueCapacity => cmx_result::ConfigZeroQueue,
        ConfigError::QueueCapacityTooLarge(_) => cmx_result::ConfigQueueTooLarge,
        ConfigError::ReplayTooLarge { .. } => cmx_result::ConfigReplayTooLarge,
        ConfigError::CoalesceTooLong(_) => cmx_result::ConfigCoalesceTooLong,
        ConfigError::NoticeOnBlockSink(_) => cmx_result::ConfigNoticeOnBlockSink,
        ConfigError::OutOfMemory(_) => cmx_result::OutOfMemory,
    }
}

/// Creates a multiplexer. On success `*out` receives it, owned by the caller
/// until `cmx_mux_free()`; on failure `*out` is set to NULL. `config` is
/// borrowed for the call only. If a sink starts open, the first
/// `cmx_mux_poll_event()` returns `CMX_FRONTEND_EVENT_OPENED`.
///
/// # Safety
/// `config` is NULL or valid for reads (with `n_sinks` readable sink configs);
/// `out` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_new(
    config: *const cmx_mux_config,
    out: *mut *mut cmx_mux,
) -> cmx_result {
    guard(|| {
        if out.is_null() {
            return cmx_result::NullParameter;
        }
        put(out, core::ptr::null_mut());
        // SAFETY: NULL or valid for reads per the contract; borrowed for this call.
        let Some(config) = (unsafe { config.as_ref() }) else {
            return cmx_result::NullParameter;
        };
        let cfg = try_ffi!(config_from_c(config));
        let engine = try_ffi!(Mux::new(cfg).map_err(config_error));
        let mux = Box::new(cmx_mux {
            poisoned: Cell::new(false),
            engine,
        });
        put(out, Box::into_raw(mux));
        cmx_result::Ok
    })
}

/// Frees a multiplexer and everything it queued (call `cmx_mux_handle_timeout()`
/// and drain `cmx_mux_poll_transmit()` first to keep it). NULL is accepted
/// and does nothing. Bytes handed out by `cmx_mux_poll_transmit()` are freed
/// too.
///
/// # Safety
/// `mux` is NULL or a pointer from `cmx_mux_new()` not yet freed; it must not
/// be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_free(mux: *mut cmx_mux) {
    super::boundary::guard_or((), || {
        if !mux.is_null() {
            // SAFETY: the pointer came from Box::into_raw in cmx_mux_new and
            // is not in use (per the contract); ownership returns to Rust.
            drop(unsafe { Box::from_raw(mux) });
        }
    });
}

/// Copies sink `sink`'s statistics into `*out`.
///
/// # Safety
/// `mux` is live; `out` is writable.
#[must_use]
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
        with_mux_ref(mux, |m| match m.stats(sink) {
            Ok(st) => {
                put(
                    out,
                    stats_to_c(&st, m.sink_state(sink).unwrap(), m.overflow(sink).unwrap()),
                );
                cmx_result::Ok
            }
            Err(_) => cmx_result::InvalidSink,
        })
    }
}

/// Stores in `*open` whether the frontend was last told OPENED (a sink is
/// connected; events not yet pulled count), and in `*n_sinks` (if not NULL)
/// the number of sink slots: one past the highest sink index in use or
/// released (`cmx_mux_sink_stats()` says `CMX_RESULT_INVALID_SINK` for a
/// released one).
///
/// # Safety
/// `mux` is live; `open` is writable; `n_sinks` is NULL or writable.
#[must_use]
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
        with_mux_ref(mux, |m| {
            put(open, m.frontend_open());
            if !n_sinks.is_null() {
                put(n_sinks, m.sink_count());
            }
            cmx_result::Ok
        })
    }
}

pub(super) fn stats_to_c(st: &SinkStats, state: SinkState, overflow: Overflow) -> cmx_sink_stats {
    cmx_sink_stats {
        state: match state {
            SinkState::Open => cmx_sink_state::Open,
            SinkState::Closed => cmx_sink_state::Closed,
            SinkState::Failed => cmx_sink_state::Failed,
            SinkState::Detaching => cmx_sink_state::Detaching,
            SinkState::Detached => cmx_sink_state::Detached,
        }
        .into(),
        overflow: match overflow {
            Overflow::Block => cmx_overflow::Block,
            Overflow::Drop => cmx_overflow::Drop,
        }
        .into(),
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
        drop_episodes: st.drop_episodes,
        notices: st.notices,
        notice_bytes: st.notice_bytes,
    }
}
