//! `cmx_result`: every outcome a `cmx_*` function reports, with stable values.

use core::ffi::c_char;

use super::enums::u32_enum;

u32_enum! {
    /// The outcome of a `cmx_*` call. The numeric values are stable: new codes
    /// are only ever added, and a retired one is never reused.
    #[must_use]
    pub enum cmx_result {
        /// Success.
        Ok = 0 => c"success",
        /// A required pointer argument was NULL.
        NullParameter = 1 => c"a required pointer argument is NULL",
        /// A Rust panic was caught; the multiplexer is unusable (free it).
        Panic = 2 => c"internal error (Rust panic caught); free this multiplexer",
        /// Nothing was accepted: an open `block` sink's queue is full. Drain
        /// what `cmx_mux_poll_transmit()` offers and write again, or wait for
        /// `CMX_FRONTEND_EVENT_WRITABLE`.
        WouldBlock = 3 => c"would block: a lossless sink's queue is full",
        /// Retired in 0.2 (the library no longer makes callbacks); never returned.
        ReentrantCall = 4 => c"called from inside one of the multiplexer's own callbacks",
        /// The sink index does not exist in this multiplexer.
        InvalidSink = 5 => c"no sink with that index",
        /// The event value is not a `cmx_sink_event`.
        InvalidEvent = 6 => c"unknown sink event value",
        /// `cmx_mux_transmitted()` for an open sink that has no bytes out with
        /// the caller (no `cmx_mux_poll_transmit()` handed any out).
        NotOffered = 7 => c"no bytes of that sink were handed out by cmx_mux_poll_transmit",
        /// The queues could not be allocated.
        OutOfMemory = 8 => c"out of memory: the queues could not be allocated",
        /// `cmx_mux_attach()`: all `CMX_MAX_SINKS` sinks are in use.
        SinkLimit = 9 => c"all 8 sinks are in use",
        /// `cmx_mux_detach()`/`cmx_mux_release()`: it is the last sink that
        /// receives output, and a multiplexer keeps one.
        LastSink = 10 => c"the last sink cannot be detached",
        /// The configuration has no sinks.
        ConfigNoSinks = 100 => c"a multiplexer needs at least one sink",
        /// The configuration has more than `CMX_MAX_SINKS` sinks.
        ConfigTooManySinks = 101 => c"too many sinks (at most 8)",
        /// More than one sink is marked as the input source.
        ConfigMultipleInputs = 102 => c"more than one sink is the input source",
        /// The queue capacity is zero.
        ConfigZeroQueue = 103 => c"queue capacity must not be zero",
        /// The queue capacity is larger than `CMX_MAX_QUEUE_CAPACITY`.
        ConfigQueueTooLarge = 104 => c"queue capacity is larger than the maximum (64 MiB)",
        /// The replay capacity is larger than the queue capacity.
        ConfigReplayTooLarge = 105 => c"replay capacity is larger than the queue capacity",
        /// A sink's overflow policy is not a `cmx_overflow` value.
        ConfigUnknownOverflow = 106 => c"unknown overflow policy (use block or drop)",
        /// Retired in 0.2 (there are no callbacks); never returned.
        ConfigNoWriteCallback = 107 => c"the sink_write callback is NULL",
        /// Retired in 0.2 (there are no callbacks); never returned.
        ConfigNoWatchCallback = 108 => c"the sink_watch callback is NULL",
        /// The coalescing window is longer than `CMX_MAX_COALESCE_NS`.
        ConfigCoalesceTooLong = 109 => c"coalescing window is longer than the maximum (100 ms)",
        /// A sink's drop unit is not a `cmx_drop_unit` value.
        ConfigUnknownDropUnit = 110 => c"unknown drop unit (use bytes or lines)",
        /// A drop notice was asked for on a `block` sink (which drops nothing).
        ConfigNoticeOnBlockSink = 111 => c"a drop notice needs overflow drop",
    }
}

/// Returns a static, NUL-terminated English description of `result` (any
/// value; unknown values get "unknown cmx_result value"). The string lives for
/// the whole program and must not be freed.
#[no_mangle]
pub extern "C" fn cmx_result_str(result: u32) -> *const c_char {
    const UNKNOWN: &core::ffi::CStr = c"unknown cmx_result value";
    super::boundary::guard_or(UNKNOWN.as_ptr(), || {
        cmx_result::try_from(result)
            .map_or(UNKNOWN, cmx_result::message)
            .as_ptr()
    })
}
