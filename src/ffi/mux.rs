//! `cmx_mux`: the multiplexer behind an opaque pointer; creation, freeing,
//! statistics.

use core::cell::Cell;
use core::mem::{offset_of, size_of};

use static_assertions::{assert_impl_all, assert_not_impl_any, const_assert, const_assert_eq};

use super::boundary::{
    ffi_panic_boundary, try_config_from_ptr, try_ffi, try_mut_from_ptr, try_opt_mut_from_ptr,
    try_ref_from_ptr, SizedConfig,
};
use super::enums::{cmx_drop_unit, cmx_overflow, cmx_sink_state};
use super::result::cmx_result;
use crate::engine::{
    Config, ConfigError, DropUnit, Mux, MuxStats, Overflow, SinkConfig, SinkState, SinkStats,
    DEFAULT_QUEUE_CAPACITY, MAX_COALESCE_NS, MAX_QUEUE_CAPACITY, MAX_SINKS,
};

/// Most sinks one multiplexer serves.
pub const CMX_MAX_SINKS: usize = 8;
/// What `cmx_mux_input_room()` allows per read from a sink that is not the
/// input source (its input is discarded).
pub const CMX_INPUT_DISCARD_CHUNK: usize = 4096;
/// The queue capacity to use when the user gave none (64 KiB).
pub const CMX_DEFAULT_QUEUE_CAPACITY: usize = 65536;
/// The largest queue (and replay tail and head) capacity accepted (64 MiB).
pub const CMX_MAX_QUEUE_CAPACITY: usize = 67108864;
/// Bytes of one line stamp, `YYYY-MM-DDTHH:MM:SS.uuuuuuZ ` (a space last).
pub const CMX_STAMP_LEN: usize = 28;
/// The version of the replay blob `cmx_mux_replay_export()` writes and
/// `cmx_mux_replay_import()` reads.
pub const CMX_REPLAY_BLOB_VERSION: u32 = 1;
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
const_assert_eq!(CMX_STAMP_LEN, crate::engine::STAMP_LEN);
const_assert_eq!(CMX_REPLAY_BLOB_VERSION, crate::engine::BLOB_VERSION);
// A watch mask has one bit per sink.
const_assert!(CMX_MAX_SINKS <= 32);

/// One sink's configuration, allocated by the caller. Set `size`; every
/// other field may be left 0, which is the safe choice: a `drop` sink in
/// `lines` mode, closed, not the input, no notice, no stamps.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct cmx_sink_config {
    /// `sizeof(cmx_sink_config)`. Any other value (a header that does not
    /// match the library, or a `size` left 0) is refused with
    /// `CMX_RESULT_CONFIG_SIZE_MISMATCH`.
    pub size: usize,
    /// A `cmx_overflow` value; 0 is `CMX_OVERFLOW_DROP`.
    pub overflow: u32,
    /// A `cmx_drop_unit` value: what a `drop` sink discards (ignored for
    /// `block`); 0 is `CMX_DROP_UNIT_LINES`.
    pub drop_unit: u32,
    /// Whether the sink is already open when the multiplexer is created (or
    /// attached).
    pub open: bool,
    /// Whether this sink is the input source (at most one may be).
    pub input: bool,
    /// Whether a `drop` sink that catches up after dropping gets one notice
    /// line, `\r\n[multiplex: N bytes dropped]\r\n` (counted in `notices`
    /// and `notice_bytes`, not in `offered`/`delivered`). Refused on `block`.
    pub drop_notice: bool,
    /// Whether every line the sink receives starts with the UTC time its
    /// first byte came from the frontend, `YYYY-MM-DDTHH:MM:SS.uuuuuuZ `
    /// (QEMU's `-msg timestamp=on` format, `CMX_STAMP_LEN` bytes; the wall
    /// clock comes from `cmx_mux_write_at_wall()`). Counted in `stamps` and
    /// `stamp_bytes`, not in `offered`/`delivered`. Other sinks get the
    /// bytes unchanged.
    pub timestamp: bool,
}

/// A multiplexer's configuration, allocated by the caller. Borrowed by
/// `cmx_mux_new()` for the call only.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct cmx_mux_config {
    /// `sizeof(cmx_mux_config)`. Any other value (a header that does not
    /// match the library, or a `size` left 0) is refused with
    /// `CMX_RESULT_CONFIG_SIZE_MISMATCH`.
    pub size: usize,
    /// `n_sinks` sink configurations; sink indexes are positions in this array.
    pub sinks: *const cmx_sink_config,
    /// 1 to `CMX_MAX_SINKS`.
    pub n_sinks: usize,
    /// Bytes each sink may queue: 1 to `CMX_MAX_QUEUE_CAPACITY`. Also the
    /// most one `cmx_mux_write()` accepts.
    pub queue_capacity: usize,
    /// Bytes of recent output (the replay tail) replayed to a sink when it
    /// opens; 0 turns it off; at most `queue_capacity`.
    pub replay_capacity: usize,
    /// Coalescing window of `cmx_mux_write_at()`, in the units of its `now`
    /// (nanoseconds by convention): 0 (off) to `CMX_MAX_COALESCE_NS`.
    /// `cmx_mux_write()` never coalesces.
    pub coalesce_ns: u64,
    /// Bytes of the first output (since creation or `cmx_mux_reset_head()`)
    /// kept for replay besides the tail: the replay head. 0 turns it off; at
    /// most `CMX_MAX_QUEUE_CAPACITY` (it may be larger than the queues: it
    /// is written to a sink from where it is kept). A sink that opens gets
    /// the head, then `\r\n[multiplex: N bytes skipped]\r\n` if bytes
    /// between head and tail were kept in neither, then the tail.
    pub replay_head_capacity: usize,
}

// SAFETY: both are repr(C) with `size: usize` as their first field (checked
// below), which the caller sets to sizeof the struct.
unsafe impl SizedConfig for cmx_sink_config {}
// SAFETY: as above.
unsafe impl SizedConfig for cmx_mux_config {}
const_assert_eq!(offset_of!(cmx_sink_config, size), 0);
const_assert_eq!(offset_of!(cmx_mux_config, size), 0);

/// A sink's statistics; byte counts are totals since the sink was attached
/// (or the multiplexer created). `offered`, `delivered`, `queued` and
/// `dropped` count the frontend's bytes only (stamps, notices and skip
/// markers are counted apart), and `offered == delivered + queued +
/// dropped` always holds.
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
    /// Bytes waiting for it now: its queue, and the rest of the replay head
    /// it is being written.
    pub queued: u64,
    /// Bytes discarded: overflow of a `drop` queue, or queued when it closed,
    /// failed, was detached (a `drop` sink) or released, or the rest of a
    /// replay head cut short by `cmx_mux_reset_head()`.
    pub dropped: u64,
    /// Bytes of history (head and tail) replayed to it (part of `offered`).
    pub replayed: u64,
    /// Largest `queued` seen.
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
    /// Line stamps written in full (a `timestamp` sink).
    pub stamps: u64,
    /// Bytes of line stamps written (not part of `offered`/`delivered`).
    pub stamp_bytes: u64,
    /// Replay skip markers written in full.
    pub skip_markers: u64,
    /// Bytes of skip markers written (not part of `offered`/`delivered`).
    /// Every byte written to the sink is counted in one of `delivered`,
    /// `stamp_bytes`, `notice_bytes` and `skip_marker_bytes`.
    pub skip_marker_bytes: u64,
}

/// The multiplexer's own counters, from `cmx_mux_stats()`: totals since it
/// was created.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct cmx_mux_counters {
    /// Bytes the frontend offered (`cmx_mux_write()`, `cmx_mux_write_at()`),
    /// counted per offer: a frontend that offers the same bytes again (one
    /// that retries, as a 16550 does) counts them again.
    pub frontend_offered: u64,
    /// Bytes of those accepted.
    pub frontend_accepted: u64,
    /// Bytes offered and not accepted: all of an offer turned away with
    /// `CMX_RESULT_WOULD_BLOCK`, or what was left of one accepted in part. A
    /// frontend that drops what is refused (virtconsole) lost these.
    pub frontend_refused_bytes: u64,
    /// Offers turned away or accepted in part.
    pub frontend_refusals: u64,
    /// Sink reports discarded because they were not polled
    /// (`cmx_mux_poll_sink_report()` keeps a bounded queue).
    pub reports_lost: u64,
}

/// A multiplexer: one frontend, 1 to `CMX_MAX_SINKS` sinks. Opaque. It never
/// calls out: the caller pushes events in and pulls work out.
pub struct cmx_mux {
    poisoned: Cell<bool>,
    engine: Mux,
}

// A multiplexer may move to another thread (QEMU's main loop may run in
// any), but is used from one at a time: it is Send and not Sync.
assert_impl_all!(Mux: Send);
assert_impl_all!(cmx_mux: Send);
assert_not_impl_any!(cmx_mux: Sync);
// The C structs' sizes, as the header declares them on 64-bit Linux (a
// change here is an ABI change: it comes with a new `size`).
#[cfg(target_pointer_width = "64")]
mod sizes {
    use super::*;
    const_assert_eq!(size_of::<cmx_sink_config>(), 24);
    const_assert_eq!(size_of::<cmx_mux_config>(), 56);
    const_assert_eq!(size_of::<cmx_sink_stats>(), 152);
    const_assert_eq!(size_of::<cmx_mux_counters>(), 40);
    const_assert_eq!(size_of::<super::super::transmit::cmx_transmit>(), 24);
    const_assert_eq!(size_of::<super::super::events::cmx_sink_report>(), 40);
    const_assert_eq!(size_of::<super::super::enums::cmx_overflow>(), 4);
    const_assert_eq!(size_of::<cmx_result>(), 4);
}

/// Runs `f` on the multiplexer for one call that changes it: a poisoned
/// multiplexer is refused, and a panic in `f` poisons it. Called inside
/// the exported function's [`ffi_panic_boundary!`], which catches the
/// panic: the multiplexer is marked poisoned for the length of the call
/// and unmarked when `f` returns, so one that unwound stays poisoned, at
/// the cost of no second `catch_unwind`.
pub(crate) fn with_mux(m: &mut cmx_mux, f: impl FnOnce(&mut Mux) -> cmx_result) -> cmx_result {
    if m.poisoned.get() {
        return cmx_result::Panic;
    }
    m.poisoned.set(true);
    let r = f(&mut m.engine);
    m.poisoned.set(r == cmx_result::Panic);
    r
}

/// [`with_mux`] for a call that only reads the multiplexer.
pub(crate) fn with_mux_ref(m: &cmx_mux, f: impl FnOnce(&Mux) -> cmx_result) -> cmx_result {
    if m.poisoned.get() {
        return cmx_result::Panic;
    }
    m.poisoned.set(true);
    let r = f(&m.engine);
    m.poisoned.set(r == cmx_result::Panic);
    r
}

/// The sinks of `config`, checked.
///
/// # Safety
/// `config.sinks` is NULL or points to `config.n_sinks` sink configurations
/// (of this header's version: the first one's `size` is checked before the
/// rest is read), readable for the call.
unsafe fn config_from_c(config: &cmx_mux_config) -> Result<Config, cmx_result> {
    if config.n_sinks == 0 {
        return Err(cmx_result::ConfigNoSinks);
    }
    if config.n_sinks > MAX_SINKS {
        return Err(cmx_result::ConfigTooManySinks);
    }
    // SAFETY: NULL or a readable sink configuration per this function's
    // contract; its size is checked before it is read as one.
    unsafe {
        super::boundary::config_from_ptr(config.sinks)?;
    }
    // SAFETY: the first element is a cmx_sink_config of this library's
    // size, so the caller's array has this library's stride, and `n_sinks`
    // (checked <= 8) elements are readable per this function's contract.
    let sinks = unsafe { super::boundary::slice_from_ptr(config.sinks, config.n_sinks) }
        .ok_or(cmx_result::NullParameter)?;
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
        replay_head_capacity: config.replay_head_capacity,
        coalesce_ns: config.coalesce_ns,
    })
}

/// One sink's configuration, checked.
pub(crate) fn sink_from_c(s: &cmx_sink_config) -> Result<SinkConfig, cmx_result> {
    if s.size != size_of::<cmx_sink_config>() {
        return Err(cmx_result::ConfigSizeMismatch);
    }
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
        timestamp: s.timestamp,
    };
    config.validate(0).map_err(config_error)?;
    Ok(config)
}

pub(crate) fn config_error(e: ConfigError) -> cmx_result {
    match e {
        ConfigError::NoSinks => cmx_result::ConfigNoSinks,
        ConfigError::TooManySinks(_) => cmx_result::ConfigTooManySinks,
        // Not reachable from C: the input comes from a flag on an existing sink.
        ConfigError::InputOutOfRange { .. } => cmx_result::InvalidSink,
        ConfigError::ZeroQueueCapacity => cmx_result::ConfigZeroQueue,
        ConfigError::QueueCapacityTooLarge(_) => cmx_result::ConfigQueueTooLarge,
        ConfigError::ReplayTooLarge { .. } => cmx_result::ConfigReplayTooLarge,
        ConfigError::CoalesceTooLong(_) => cmx_result::ConfigCoalesceTooLong,
        ConfigError::ReplayHeadTooLarge(_) => cmx_result::ConfigReplayHeadTooLarge,
        ConfigError::NoticeOnBlockSink(_) => cmx_result::ConfigNoticeOnBlockSink,
        ConfigError::OutOfMemory(_) => cmx_result::OutOfMemory,
    }
}

/// Creates a multiplexer. On success `*out` receives it, owned by the caller
/// until `cmx_mux_free()`. `config` is borrowed for the call only; its
/// `size` (and each sink's) must be `sizeof` its struct. If a sink starts
/// open, the first `cmx_mux_poll_event()` returns
/// `CMX_FRONTEND_EVENT_OPENED`.
///
/// # Safety
/// `config` is NULL or points to a readable `cmx_mux_config` whose `sinks`
/// points to `n_sinks` readable sink configurations (only the leading
/// `size` fields are read before they are checked); `out` is NULL or
/// writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_new(
    config: *const cmx_mux_config,
    out: *mut *mut cmx_mux,
) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: `out` is NULL or writable and `config` NULL or a readable
        // configuration (size first), per this function's contract.
        let (out, config) = unsafe { (try_mut_from_ptr!(out), try_config_from_ptr!(config)) };
        // SAFETY: `config.sinks` is as this function's contract says.
        let cfg = try_ffi!(unsafe { config_from_c(config) });
        let engine = try_ffi!(Mux::new(cfg).map_err(config_error));
        *out = super::boundary::box_into_ptr(cmx_mux {
            poisoned: Cell::new(false),
            engine,
        });
        cmx_result::Ok
    }
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
    ffi_panic_boundary! {
        // SAFETY: NULL or from cmx_mux_new (Box::into_raw) and not in use,
        // per this function's contract; ownership returns to Rust.
        unsafe { super::boundary::free_box(mux) }
    }
}

/// Copies sink `sink`'s statistics into `*out`.
///
/// # Safety
/// `mux` is NULL or live; `out` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_sink_stats(
    mux: *const cmx_mux,
    sink: usize,
    out: *mut cmx_sink_stats,
) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: `mux` is NULL or live, `out` NULL or writable, per this
        // function's contract, and neither is used by anyone else meanwhile.
        let (m, out) = unsafe { (try_ref_from_ptr!(mux), try_mut_from_ptr!(out)) };
        with_mux_ref(m, |e| {
            *out = try_ffi!(sink_stats_to_c(e, sink));
            cmx_result::Ok
        })
    }
}

/// Copies the multiplexer's own counters into `*out`.
///
/// # Safety
/// `mux` is NULL or live; `out` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_stats(
    mux: *const cmx_mux,
    out: *mut cmx_mux_counters,
) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: `mux` is NULL or live, `out` NULL or writable, per this
        // function's contract.
        let (m, out) = unsafe { (try_ref_from_ptr!(mux), try_mut_from_ptr!(out)) };
        with_mux_ref(m, |e| {
            *out = counters_to_c(&e.mux_stats());
            cmx_result::Ok
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
/// `mux` is NULL or live; `open` is NULL or writable; `n_sinks` is NULL or
/// writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_frontend_open(
    mux: *const cmx_mux,
    open: *mut bool,
    n_sinks: *mut usize,
) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: `mux` is NULL or live, the out-parameters NULL or writable,
        // per this function's contract.
        let (m, open, n_sinks) = unsafe {
            (
                try_ref_from_ptr!(mux),
                try_mut_from_ptr!(open),
                try_opt_mut_from_ptr!(n_sinks),
            )
        };
        with_mux_ref(m, |e| {
            *open = e.frontend_open();
            if let Some(n) = n_sinks {
                *n = e.sink_count();
            }
            cmx_result::Ok
        })
    }
}

/// Sink `sink`'s statistics as the C struct.
pub(crate) fn sink_stats_to_c(e: &Mux, sink: usize) -> Result<cmx_sink_stats, cmx_result> {
    let st = e.stats(sink).map_err(|_| cmx_result::InvalidSink)?;
    let state = e.sink_state(sink).map_err(|_| cmx_result::InvalidSink)?;
    let overflow = e.overflow(sink).map_err(|_| cmx_result::InvalidSink)?;
    Ok(stats_to_c(&st, state, overflow))
}

pub(crate) fn stats_to_c(st: &SinkStats, state: SinkState, overflow: Overflow) -> cmx_sink_stats {
    cmx_sink_stats {
        state: match state {
            SinkState::Open => cmx_sink_state::Open,
            SinkState::Closed => cmx_sink_state::Closed,
            SinkState::Failed => cmx_sink_state::Failed,
            SinkState::Detaching => cmx_sink_state::Detaching,
            SinkState::Detached => cmx_sink_state::Detached,
        }
        .into(),
        overflow: overflow_to_c(overflow).into(),
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
        stamps: st.stamps,
        stamp_bytes: st.stamp_bytes,
        skip_markers: st.skip_markers,
        skip_marker_bytes: st.skip_marker_bytes,
    }
}

pub(crate) const fn overflow_to_c(o: Overflow) -> cmx_overflow {
    match o {
        Overflow::Block => cmx_overflow::Block,
        Overflow::Drop => cmx_overflow::Drop,
    }
}

pub(crate) const fn drop_unit_to_c(u: DropUnit) -> cmx_drop_unit {
    match u {
        DropUnit::Bytes => cmx_drop_unit::Bytes,
        DropUnit::Lines => cmx_drop_unit::Lines,
    }
}

const fn counters_to_c(s: &MuxStats) -> cmx_mux_counters {
    cmx_mux_counters {
        frontend_offered: s.frontend_offered,
        frontend_accepted: s.frontend_accepted,
        frontend_refused_bytes: s.frontend_refused_bytes,
        frontend_refusals: s.frontend_refusals,
        reports_lost: s.reports_lost,
    }
}
