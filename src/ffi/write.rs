//! Frontend output: `cmx_mux_write()`, `cmx_mux_write_at()`,
//! `cmx_mux_write_at_wall()` (with the wall clock, for line stamps), the room left,
//! and the coalescing timer (`cmx_mux_poll_timeout()`, `cmx_mux_handle_timeout()`).
//!
//! A frontend that writes one byte per call (a 16550 UART) costs every sink a
//! system call per byte. With a coalescing window (`cmx_mux_config.coalesce_ns`)
//! output that follows other output within the window is held, and the
//! caller releases it once at a deadline the library names; output after a
//! quiet window is offered at once, so a keystroke's echo is not delayed.

use super::boundary::{ffi_panic_boundary, try_mut_from_ptr, try_ref_from_ptr, try_slice};
use super::mux::{cmx_mux, with_mux, with_mux_ref};
use super::result::cmx_result;
use crate::engine::{Mux, WouldBlock};

/// The body the three writes share: `data` (`len` bytes) offered by
/// `write`, its count of accepted bytes stored in `*accepted` on
/// `CMX_RESULT_OK`, `CMX_RESULT_WOULD_BLOCK` when nothing was taken.
///
/// # Safety
/// `mux` is NULL or live; `data` is valid for `len` bytes (or NULL with
/// `len` 0); `accepted` is NULL or writable; none is used by anyone else
/// during the call.
unsafe fn write_with(
    mux: *mut cmx_mux,
    data: *const u8,
    len: usize,
    accepted: *mut usize,
    write: impl FnOnce(&mut Mux, &[u8]) -> Result<usize, WouldBlock>,
) -> cmx_result {
    // SAFETY: `mux` NULL or live, `data` valid for `len` bytes (or NULL
    // with `len` 0), `accepted` NULL or writable, per this function's
    // contract; none is used by anyone else during the call.
    let (m, data, accepted) = unsafe {
        (
            try_mut_from_ptr!(mux),
            try_slice!(data, len),
            try_mut_from_ptr!(accepted),
        )
    };
    with_mux(m, |e| match write(e, data) {
        Ok(n) => {
            *accepted = n;
            cmx_result::Ok
        }
        Err(_) => cmx_result::WouldBlock,
    })
}

/// Offers `len` bytes of frontend output. On `CMX_RESULT_OK`, `*accepted`
/// leading bytes (1 to `len`, at most the queue capacity, or 0 when `len` is
/// 0) were taken and queued for every open sink: write them out with
/// `cmx_mux_poll_transmit()`, and offer the rest later. On
/// `CMX_RESULT_WOULD_BLOCK` nothing was taken (and `*accepted` is not
/// written): an open `block` sink's queue is full. The full sinks are
/// offered again by `cmx_mux_poll_transmit()`, so a caller that must not
/// return (QEMU's `qemu_chr_fe_write_all()`) drains and retries and makes
/// progress on whatever the sinks take; a caller that can wait does so
/// until `CMX_FRONTEND_EVENT_WRITABLE`. What is not accepted is counted in
/// `cmx_mux_counters` (`cmx_mux_stats()`). `data` may be NULL only when
/// `len` is 0; it is copied, and borrowed for the call only.
///
/// # Safety
/// `mux` is NULL or live; `data` is valid for `len` bytes (or NULL with
/// `len` 0); `accepted` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_write(
    mux: *mut cmx_mux,
    data: *const u8,
    len: usize,
    accepted: *mut usize,
) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: `mux` NULL or live, `data` valid for `len` bytes (or NULL
        // with `len` 0), `accepted` NULL or writable, per this function's
        // contract; none is used by anyone else during the call: the
        // contract of write_with().
        unsafe { write_with(mux, data, len, accepted, Mux::write) }
    }
}

/// `cmx_mux_write()` with coalescing: `now` is the caller's monotonic clock
/// (nanoseconds, in the units of `coalesce_ns`). Bytes that follow other
/// output within the window are held (and count as accepted); afterwards
/// `cmx_mux_poll_timeout()` names the time at which the caller must call
/// `cmx_mux_handle_timeout()`. A write that would not fit in a queue
/// releases what is held first. With `coalesce_ns` 0 this is `cmx_mux_write()`.
/// The wall clock is not known: see `cmx_mux_write_at_wall()`.
///
/// # Safety
/// `mux` is NULL or live; `data` is valid for `len` bytes (or NULL with
/// `len` 0); `accepted` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_write_at(
    mux: *mut cmx_mux,
    data: *const u8,
    len: usize,
    now: u64,
    accepted: *mut usize,
) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: as for cmx_mux_write(), per this function's contract.
        unsafe { write_with(mux, data, len, accepted, |e, data| e.write_at(data, now)) }
    }
}

/// `cmx_mux_write_at()` with the wall clock, for line stamps: `wall_ns` is
/// the UTC time in nanoseconds since the Unix epoch (`CLOCK_REALTIME`;
/// `UINT64_MAX` means unknown), taken with `now`. It is the time of every
/// line whose first byte is in `data`: a sink with `timestamp` set gets
/// each line it receives preceded by it, as `YYYY-MM-DDTHH:MM:SS.uuuuuuZ `
/// (QEMU's `-msg timestamp=on` format, UTC, microseconds). A line is the
/// bytes up to and including `\n`: the stamp goes before the first byte of
/// the output and before each byte that follows a `\n`; with `\r\n`
/// line ends the `\r` ends its line and the stamp follows the `\n`. A sink
/// that receives part of a line only (it opened in the middle of it, or a
/// drop cut its start) gets that part preceded by the line's stamp; a line
/// cut in its middle keeps its one stamp. `cmx_mux_write()` and
/// `cmx_mux_write_at()` do not know the wall clock: the lines that start in
/// them are stamped `????-??-??T??:??:??.??????Z `. Otherwise as
/// `cmx_mux_write_at()`.
///
/// # Safety
/// `mux` is NULL or live; `data` is valid for `len` bytes (or NULL with
/// `len` 0); `accepted` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_write_at_wall(
    mux: *mut cmx_mux,
    data: *const u8,
    len: usize,
    now: u64,
    wall_ns: u64,
    accepted: *mut usize,
) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: as for cmx_mux_write(), per this function's contract.
        unsafe {
            write_with(mux, data, len, accepted, |e, data| {
                e.write_at_wall(data, now, wall_ns)
            })
        }
    }
}

/// Stores in `*room` how many bytes `cmx_mux_write()` would accept now
/// (`SIZE_MAX` when no open `block` sink limits it; one call still accepts
/// at most the queue capacity).
///
/// # Safety
/// `mux` is NULL or live; `room` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_write_room(mux: *const cmx_mux, room: *mut usize) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: `mux` NULL or live, `room` NULL or writable, per this
        // function's contract.
        let (m, room) = unsafe { (try_ref_from_ptr!(mux), try_mut_from_ptr!(room)) };
        with_mux_ref(m, |e| {
            *room = e.write_room();
            cmx_result::Ok
        })
    }
}

/// Stores in `*pending` whether coalesced output is held, and if so in
/// `*deadline` when (the clock of `cmx_mux_write_at()`) the caller must call
/// `cmx_mux_handle_timeout()`; `*deadline` is 0 when nothing is held. The
/// deadline is one window (`coalesce_ns`) after the output that went out
/// before the held output; it only changes through `cmx_mux_write_at()`,
/// `cmx_mux_write()`, `cmx_mux_input()` and `cmx_mux_handle_timeout()`.
///
/// # Safety
/// `mux` is NULL or live; `pending` and `deadline` are NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_poll_timeout(
    mux: *const cmx_mux,
    pending: *mut bool,
    deadline: *mut u64,
) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: `mux` NULL or live, the out-parameters NULL or writable,
        // per this function's contract.
        let (m, pending, deadline) = unsafe {
            (
                try_ref_from_ptr!(mux),
                try_mut_from_ptr!(pending),
                try_mut_from_ptr!(deadline),
            )
        };
        with_mux_ref(m, |e| {
            let at = e.poll_timeout();
            *pending = at.is_some();
            *deadline = at.unwrap_or(0);
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
/// `mux` is NULL or live.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_handle_timeout(mux: *mut cmx_mux, now: u64) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: NULL or live per this function's contract.
        let m = unsafe { try_mut_from_ptr!(mux) };
        with_mux(m, |e| {
            e.handle_timeout(now);
            cmx_result::Ok
        })
    }
}
