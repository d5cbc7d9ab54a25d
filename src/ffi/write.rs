//! Frontend output: `cmx_mux_write()`, `cmx_mux_write_at()`, the room left,
//! and the coalescing timer (`cmx_mux_poll_timeout()`, `cmx_mux_handle_timeout()`).
//!
//! A frontend that writes one byte per call (a 16550 UART) costs every sink a
//! system call per byte. With a coalescing window (`cmx_mux_config.coalesce_ns`)
//! output that follows other output within the window is held, and the
//! caller releases it once at a deadline the library names; output after a
//! quiet window is offered at once, so a keystroke's echo is not delayed.

use super::mux::{cmx_mux, put, with_mux, with_mux_ref};
use super::result::cmx_result;

/// Offers `len` bytes of frontend output. On `CMX_RESULT_OK`, `*accepted`
/// leading bytes (1 to `len`, at most the queue capacity, or 0 when `len` is
/// 0) were taken and queued for every open sink: write them out with
/// `cmx_mux_poll_transmit()`, and offer the rest later. On
/// `CMX_RESULT_WOULD_BLOCK` nothing was taken: an open `block` sink's queue
/// is full. The full sinks are offered again by `cmx_mux_poll_transmit()`, so
/// a caller that must not return (QEMU's `qemu_chr_fe_write_all()`) drains
/// and retries and makes progress on whatever the sinks take; a caller that
/// can wait does so until `CMX_FRONTEND_EVENT_WRITABLE`. `data` may be NULL
/// only when `len` is 0; it is copied, and borrowed for the call only.
///
/// # Safety
/// `mux` is live; `data` is valid for `len` bytes; `accepted` is writable.
#[must_use]
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

/// `cmx_mux_write()` with coalescing: `now` is the caller's monotonic clock
/// (nanoseconds, in the units of `coalesce_ns`). Bytes that follow other
/// output within the window are held (and count as accepted); afterwards
/// `cmx_mux_poll_timeout()` names the time at which the caller must call
/// `cmx_mux_handle_timeout()`. A write that would not fit in a queue
/// releases what is held first. With `coalesce_ns` 0 this is `cmx_mux_write()`.
///
/// # Safety
/// `mux` is live; `data` is valid for `len` bytes; `accepted` is writable.
#[must_use]
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

/// `cmx_mux_write()` (`now` None) or `cmx_mux_write_at()`.
///
/// # Safety
/// As for `cmx_mux_write()`.
unsafe fn write_impl(
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
                None => m.write(data),
                Some(now) => m.write_at(data, now),
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
/// (`SIZE_MAX` when no open `block` sink limits it; one call still accepts
/// at most the queue capacity).
///
/// # Safety
/// `mux` is live; `room` is writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_write_room(mux: *const cmx_mux, room: *mut usize) -> cmx_result {
    if room.is_null() {
        return cmx_result::NullParameter;
    }
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux_ref(mux, |m| {
            put(room, m.write_room());
            cmx_result::Ok
        })
    }
}

/// Stores in `*pending` whether coalesced output is held, and if so in
/// `*deadline` when (the clock of `cmx_mux_write_at()`) the caller must call
/// `cmx_mux_handle_timeout()`; `*deadline` is 0 when nothing is held. The
/// deadline is at most `coalesce_ns` after the write that held the output;
/// it only changes through `cmx_mux_write_at()`, `cmx_mux_write()`,
/// `cmx_mux_input()` and `cmx_mux_handle_timeout()`.
///
/// # Safety
/// `mux` is live; `pending` and `deadline` are writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_poll_timeout(
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
        with_mux_ref(mux, |m| {
            if let Some(at) = m.poll_timeout() {
                put(pending, true);
                put(deadline, at);
            }
            cmx_result::Ok
        })
    }
}

/// The deadline of `cmx_mux_poll_timeout()` has come (or output must go out
/// now, as before `cmx_mux_free()`): the held output is offered through
/// `cmx_mux_poll_transmit()`; `now` is the current time in the clock of
/// `cmx_mux_write_at()`. With nothing held it does nothing.
///
/// # Safety
/// `mux` is live.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_handle_timeout(mux: *mut cmx_mux, now: u64) -> cmx_result {
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux(mux, |m| {
            m.handle_timeout(now);
            cmx_result::Ok
        })
    }
}
