//! `cmx_result`: every outcome a `cmx_*` function reports, with stable values.

use core::ffi::c_char;

/// The outcome of a `cmx_*` call. The numeric values are stable: new codes are
/// only ever added.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cmx_result {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullParameter = 1,
    /// A Rust panic was caught; the multiplexer is unusable (free it).
    Panic = 2,
    /// Nothing was accepted: an open `block` sink's queue is full. The
    /// `frontend_writable` callback will be called when writing may succeed.
    WouldBlock = 3,
    /// Called from inside one of this multiplexer's own callbacks.
    ReentrantCall = 4,
    /// The sink index does not exist in this multiplexer.
    InvalidSink = 5,
    /// The event value is not a `cmx_sink_event`.
    InvalidEvent = 6,
    /// The configuration has no sinks.
    ConfigNoSinks = 100,
    /// The configuration has more than `CMX_MAX_SINKS` sinks.
    ConfigTooManySinks = 101,
    /// More than one sink is marked as the input source.
    ConfigMultipleInputs = 102,
    /// The queue capacity is zero.
    ConfigZeroQueue = 103,
    /// The queue capacity is larger than `CMX_MAX_QUEUE_CAPACITY`.
    ConfigQueueTooLarge = 104,
    /// The replay capacity is larger than the queue capacity.
    ConfigReplayTooLarge = 105,
    /// A sink's overflow policy is not a `cmx_overflow` value.
    ConfigUnknownOverflow = 106,
    /// The `sink_write` callback is NULL.
    ConfigNoWriteCallback = 107,
    /// The `sink_watch` callback is NULL (without it a queued sink never drains).
    ConfigNoWatchCallback = 108,
    /// The coalescing window is longer than `CMX_MAX_COALESCE_NS`.
    ConfigCoalesceTooLong = 109,
}

impl cmx_result {
    /// Every code, for tests and for callers that want to list them.
    /// cbindgen:ignore
    pub const ALL: [cmx_result; 17] = [
        cmx_result::Ok,
        cmx_result::NullParameter,
        cmx_result::Panic,
        cmx_result::WouldBlock,
        cmx_result::ReentrantCall,
        cmx_result::InvalidSink,
        cmx_result::InvalidEvent,
        cmx_result::ConfigNoSinks,
        cmx_result::ConfigTooManySinks,
        cmx_result::ConfigMultipleInputs,
        cmx_result::ConfigZeroQueue,
        cmx_result::ConfigQueueTooLarge,
        cmx_result::ConfigReplayTooLarge,
        cmx_result::ConfigUnknownOverflow,
        cmx_result::ConfigNoWriteCallback,
        cmx_result::ConfigNoWatchCallback,
        cmx_result::ConfigCoalesceTooLong,
    ];

    /// A one-line English description, NUL-terminated.
    pub fn message(self) -> &'static core::ffi::CStr {
        match self {
            cmx_result::Ok => c"success",
            cmx_result::NullParameter => c"a required pointer argument is NULL",
            cmx_result::Panic => c"internal error (Rust panic caught); free this multiplexer",
            cmx_result::WouldBlock => c"would block: a lossless sink's queue is full",
            cmx_result::ReentrantCall => {
                c"called from inside one of the multiplexer's own callbacks"
            }
            cmx_result::InvalidSink => c"no sink with that index",
            cmx_result::InvalidEvent => c"unknown sink event value",
            cmx_result::ConfigNoSinks => c"a multiplexer needs at least one sink",
            cmx_result::ConfigTooManySinks => c"too many sinks (at most 8)",
            cmx_result::ConfigMultipleInputs => c"more than one sink is the input source",
            cmx_result::ConfigZeroQueue => c"queue capacity must not be zero",
            cmx_result::ConfigQueueTooLarge => {
                c"queue capacity is larger than the maximum (64 MiB)"
            }
            cmx_result::ConfigReplayTooLarge => {
                c"replay capacity is larger than the queue capacity"
            }
            cmx_result::ConfigUnknownOverflow => c"unknown overflow policy (use block or drop)",
            cmx_result::ConfigNoWriteCallback => c"the sink_write callback is NULL",
            cmx_result::ConfigNoWatchCallback => c"the sink_watch callback is NULL",
            cmx_result::ConfigCoalesceTooLong => {
                c"coalescing window is longer than the maximum (100 ms)"
            }
        }
    }
}

/// Returns a static, NUL-terminated English description of `result` (any
/// value; unknown values get "unknown cmx_result value"). The string lives for
/// the whole program and must not be freed.
#[no_mangle]
pub extern "C" fn cmx_result_str(result: u32) -> *const c_char {
    const UNKNOWN: &core::ffi::CStr = c"unknown cmx_result value";
    super::boundary::guard_or(UNKNOWN.as_ptr(), || {
        cmx_result::ALL
            .iter()
            .find(|r| **r as u32 == result)
            .map_or(UNKNOWN, |r| r.message())
            .as_ptr()
    })
}
