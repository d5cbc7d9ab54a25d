//! Coalescing: `cmx_mux_write_at()`, `cmx_mux_flush_deadline()`, `cmx_mux_flush()`.
//!
//! A frontend that writes one byte per call (a 16550 UART) costs every sink a
//! system call per byte. With a coalescing window (`cmx_mux_config.coalesce_ns`)
//! output that follows other output within the window is queued, and the
//! caller flushes it once at a deadline the library names; output after a
//! quiet window goes out at once, so a keystroke's echo is not delayed.

use super::mux::{cmx_mux, put, with_mux, write_impl};
use super::result::cmx_result;

/// `cmx_mux_write()` with coalescing: `now` is the caller's monotonic clock
/// (nanoseconds, in the units of `coalesce_ns`). Bytes that follow other
/// output within the window are queued (and count as accepted); afterwards
/// `cmx_mux_flush_deadline()` names the time at which the caller must call
/// `cmx_mux_flush()`. A write that would not fit in a queue flushes first.
/// With `coalesce_ns` 0 this is `cmx_mux_write()`.
///
/// # Safety
/// `mux` is live; `data` is valid for `len` bytes; `accepted` is writable.
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_write_at(
    mux: *mut cmx_mux,
    data: *const u8,
    len: usize,
    now: u64,
    accepted: *mut usize,
) -> cmx_result {
    // SAFETY: the same contract as this function's.
    unsafe { write_impl(mux, data, len, accepted, Some(now)) }
}

/// Stores in `*pending` whether coalesced output waits, and if so in
/// `*deadline` when (the clock of `cmx_mux_write_at()`) the caller must call
/// `cmx_mux_flush()`; `*deadline` is 0 when nothing waits. The deadline is at
/// most `coalesce_ns` after the write that queued the output; it only changes
/// through `cmx_mux_write_at()`, `cmx_mux_write()` and `cmx_mux_flush()`.
///
/// # Safety
/// `mux` is live; `pending` and `deadline` are writable.
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_flush_deadline(
    mux: *const cmx_mux,
    pending: *mut bool,
    deadline: *mut u64,
) -> cmx_result {
    if pending.is_null() || deadline.is_null() {
        return cmx_result::NullParameter;
    }
    put(pending, false);
    put(deadline, 0);
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux(mux, |m| {
            if let Some(at) = m.engine.flush_deadline() {
                put(pending, true);
                put(deadline, at);
            }
            cmx_result::Ok
        })
    }
}

/// Writes the coalesced output to every open sink that is not pushing back
/// (those keep draining through `cmx_mux_sink_writable()`); `now` is the
/// current time in the clock of `cmx_mux_write_at()`. Call it at the deadline
/// and before `cmx_mux_free()`, which discards what is queued. With nothing
/// coalesced it does nothing.
///
/// # Safety
/// `mux` is live.
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_flush(mux: *mut cmx_mux, now: u64) -> cmx_result {
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux(mux, |m| {
            m.engine.flush(&mut m.io, now);
            cmx_result::Ok
        })
    }
}
