//! `cmx_result`: every outcome a `cmx_*` function reports, with stable values.

use core::ffi::{c_char, CStr};

use super::boundary::ffi_panic_boundary;
use super::enums::c_enum;

/// The outcome of a `cmx_*` call. The numeric values are stable: new codes
/// are only ever added, and a retired one is never reused.
#[must_use]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cmx_result {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullParameter = 1,
    /// A Rust panic was caught; the multiplexer is unusable (free it).
    Panic = 2,
    /// Nothing was accepted: an open `block` sink's queue is full. Drain
    /// what `cmx_mux_poll_transmit()` offers and write again, or wait for
    /// `CMX_FRONTEND_EVENT_WRITABLE`.
    WouldBlock = 3,
    // 4: retired in 0.2 (REENTRANT_CALL: the library no longer makes
    // callbacks), never reused.
    /// The sink index does not exist in this multiplexer (never attached,
    /// or released).
    InvalidSink = 5,
    /// The event value is not a `cmx_sink_event`.
    InvalidEvent = 6,
    /// `cmx_mux_transmitted()` for a sink that has no bytes out with the
    /// caller: `cmx_mux_poll_transmit()` handed none out, or they were
    /// reported already.
    NotOffered = 7,
    /// The queues could not be allocated.
    OutOfMemory = 8,
    /// `cmx_mux_attach()`: all `CMX_MAX_SINKS` sinks are in use.
    SinkLimit = 9,
    /// `cmx_mux_detach()`/`cmx_mux_release()`: it is the last sink that
    /// receives output, and a multiplexer keeps one.
    LastSink = 10,
    /// `cmx_mux_replay_export()`: the buffer is shorter than the blob (ask
    /// for its size with a NULL buffer of length 0).
    BufferTooSmall = 11,
    /// `cmx_mux_replay_import()`: not a replay blob, or an inconsistent one
    /// (cut short, trailing bytes, counts that do not match its bytes, a
    /// head and tail that disagree).
    ReplayBlobMalformed = 12,
    /// `cmx_mux_replay_import()`: a replay blob of a version this library
    /// does not read (it reads `CMX_REPLAY_BLOB_VERSION`).
    ReplayBlobVersion = 13,
    /// `cmx_mux_replay_import()`: the blob holds more than this
    /// multiplexer keeps (a longer head or tail, or more line times, than
    /// its configuration has room for).
    ReplayBlobTooLarge = 14,
    /// `cmx_mux_replay_import()`: this multiplexer has written output
    /// already; import into a new one.
    ReplayNotFresh = 15,
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
    // 107: retired in 0.2 (CONFIG_NO_WRITE_CALLBACK), never reused.
    // 108: retired in 0.2 (CONFIG_NO_WATCH_CALLBACK), never reused.
    /// The coalescing window is longer than `CMX_MAX_COALESCE_NS`.
    ConfigCoalesceTooLong = 109,
    /// A sink's drop unit is not a `cmx_drop_unit` value.
    ConfigUnknownDropUnit = 110,
    /// A drop notice was asked for on a `block` sink (which drops nothing).
    ConfigNoticeOnBlockSink = 111,
    /// A configuration struct's `size` is not `sizeof` that struct in this
    /// library: the header the caller was compiled with is another version
    /// than the library it runs with, or `size` was not set.
    ConfigSizeMismatch = 112,
    /// The replay head capacity is larger than `CMX_MAX_QUEUE_CAPACITY`.
    ConfigReplayHeadTooLarge = 113,
}
c_enum!(cmx_result {
    Ok,
    NullParameter,
    Panic,
    WouldBlock,
    InvalidSink,
    InvalidEvent,
    NotOffered,
    OutOfMemory,
    SinkLimit,
    LastSink,
    BufferTooSmall,
    ReplayBlobMalformed,
    ReplayBlobVersion,
    ReplayBlobTooLarge,
    ReplayNotFresh,
    ConfigNoSinks,
    ConfigTooManySinks,
    ConfigMultipleInputs,
    ConfigZeroQueue,
    ConfigQueueTooLarge,
    ConfigReplayTooLarge,
    ConfigUnknownOverflow,
    ConfigCoalesceTooLong,
    ConfigUnknownDropUnit,
    ConfigNoticeOnBlockSink,
    ConfigSizeMismatch,
    ConfigReplayHeadTooLarge,
});

impl cmx_result {
    /// A one-line English description, NUL-terminated and static.
    pub const fn message(self) -> &'static CStr {
        match self {
            cmx_result::Ok => c"success",
            cmx_result::NullParameter => c"a required pointer argument is NULL",
            cmx_result::Panic => c"internal error (Rust panic caught); free this multiplexer",
            cmx_result::WouldBlock => c"would block: a lossless sink's queue is full",
            cmx_result::InvalidSink => c"no sink with that index",
            cmx_result::InvalidEvent => c"unknown sink event value",
            cmx_result::NotOffered => {
                c"no bytes of that sink are out: none were handed out, or they were reported"
            }
            cmx_result::OutOfMemory => c"out of memory: the queues could not be allocated",
            cmx_result::SinkLimit => c"all 8 sinks are in use",
            cmx_result::LastSink => c"the last sink cannot be detached",
            cmx_result::BufferTooSmall => c"the buffer is too small",
            cmx_result::ReplayBlobMalformed => c"not a well-formed replay blob",
            cmx_result::ReplayBlobVersion => {
                c"replay blob of another version than this library reads"
            }
            cmx_result::ReplayBlobTooLarge => {
                c"the replay blob holds more than this multiplexer keeps"
            }
            cmx_result::ReplayNotFresh => {
                c"output was written already: import into a new multiplexer"
            }
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
            cmx_result::ConfigUnknownOverflow => c"unknown overflow policy (use drop or block)",
            cmx_result::ConfigCoalesceTooLong => {
                c"coalescing window is longer than the maximum (100 ms)"
            }
            cmx_result::ConfigUnknownDropUnit => c"unknown drop unit (use lines or bytes)",
            cmx_result::ConfigNoticeOnBlockSink => c"a drop notice needs overflow drop",
            cmx_result::ConfigSizeMismatch => {
                c"configuration size mismatch: the header and the library differ, or size is unset"
            }
            cmx_result::ConfigReplayHeadTooLarge => {
                c"replay head capacity is larger than the maximum (64 MiB)"
            }
        }
    }
}

impl core::fmt::Display for cmx_result {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.message().to_string_lossy())
    }
}

impl std::error::Error for cmx_result {}

/// Returns a static, NUL-terminated English description of `result` (any
/// value; unknown and retired values get `unknown cmx_result value`). The
/// string lives for the whole program and must not be freed.
#[no_mangle]
pub extern "C" fn cmx_result_str(result: u32) -> *const c_char {
    ffi_panic_boundary! {
        cmx_result::try_from(result)
            .map_or(c"unknown cmx_result value", cmx_result::message)
            .as_ptr()
    }
}
