//! Output to the sinks: `cmx_mux_poll_transmit()` hands out bytes,
//! `cmx_mux_transmitted()` reports what the sink took, and the caller
//! watches the sinks in `cmx_mux_watch_mask()`.

use core::ffi::c_int;

use super::boundary::{ffi_panic_boundary, try_mut_from_ptr, try_ref_from_ptr};
use super::mux::{cmx_mux, with_mux, with_mux_ref};
use super::result::cmx_result;
use crate::engine::{TransmitError, WriteOutcome};

/// Bytes to write to a sink, from `cmx_mux_poll_transmit()`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct cmx_transmit {
    /// The sink's index.
    pub sink: usize,
    /// The bytes: owned by the multiplexer, valid until the next call on it
    /// other than `cmx_mux_sink_event()` for another sink. NULL when `len`
    /// is 0. (A CLOSED for this sink withdraws them; see
    /// `cmx_mux_transmitted()`.)
    pub data: *const u8,
    /// How many; 0 when nothing is to be written now.
    pub len: usize,
}

/// Stores in `*out` the next bytes to write, the front of one sink's queue,
/// or `len` 0 when nothing is to be written now. Write them (or some of them)
/// to sink `out->sink` without blocking, then report with
/// `cmx_mux_transmitted()` before any other call (but
/// `cmx_mux_sink_event()`, which may come from inside the write); asking
/// again first hands out the same bytes. A caller drains by calling this
/// until `len` is 0.
///
/// # Safety
/// `mux` is NULL or live; `out` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_poll_transmit(
    mux: *mut cmx_mux,
    out: *mut cmx_transmit,
) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: `mux` NULL or live, `out` NULL or writable, per this
        // function's contract.
        let (m, out) = unsafe { (try_mut_from_ptr!(mux), try_mut_from_ptr!(out)) };
        with_mux(m, |e| {
            *out = match e.poll_transmit() {
                Some(t) => cmx_transmit {
                    sink: t.sink,
                    data: t.data.as_ptr(),
                    len: t.data.len(),
                },
                None => cmx_transmit {
                    sink: 0,
                    data: core::ptr::null(),
                    len: 0,
                },
            };
            cmx_result::Ok
        })
    }
}

/// Reports what became of the bytes `cmx_mux_poll_transmit()` handed out for
/// `sink`: `result` >= 0 is how many the sink took (0 counts as would-block;
/// more than handed out marks the sink failed with EINVAL), `-EAGAIN` or
/// `-EWOULDBLOCK` means it took none (watch it: it is in
/// `cmx_mux_watch_mask()`), `-EINTR` offers them again, any other negative
/// value is `-errno` of a hard error, which marks the sink failed (reported
/// once by `cmx_mux_poll_sink_report()`).
///
/// Re-entrancy: if the sink closed while its bytes were out
/// (`cmx_mux_sink_event()` CLOSED from inside the caller's write, as a
/// socket whose peer hung up delivers it: EPIPE, then CLOSED), those bytes
/// were withdrawn with its queue, and this report is accepted
/// (`CMX_RESULT_OK`) and ignored, whatever `result` says, even if the sink
/// opened again in between: a hang-up does not fail the sink. Likewise if
/// it was detached or (a `drop` sink) discarded them to make room. A second
/// report for the same bytes, or one for a sink with nothing out, is
/// `CMX_RESULT_NOT_OFFERED`; a released index is `CMX_RESULT_INVALID_SINK`.
///
/// # Safety
/// `mux` is NULL or live.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_transmitted(
    mux: *mut cmx_mux,
    sink: usize,
    result: isize,
) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: NULL or live per this function's contract.
        let m = unsafe { try_mut_from_ptr!(mux) };
        let outcome = match usize::try_from(result) {
            Ok(n) => WriteOutcome::Written(n),
            Err(_) => match result
                .checked_neg()
                .and_then(|e| c_int::try_from(e).ok())
                .unwrap_or(libc::EINVAL)
            {
                libc::EINTR => WriteOutcome::Interrupted,
                e if e == libc::EAGAIN || e == libc::EWOULDBLOCK => WriteOutcome::WouldBlock,
                e => WriteOutcome::Failed(e),
            },
        };
        with_mux(m, |e| match e.transmitted(sink, outcome) {
            Ok(()) => cmx_result::Ok,
            Err(TransmitError::NoSuchSink(_)) => cmx_result::InvalidSink,
            Err(TransmitError::NotOffered(_)) => cmx_result::NotOffered,
        })
    }
}

/// Stores in `*mask` the sinks to watch for writability: bit k is set while
/// sink k pushed back with bytes queued. Watch those (level-triggered: as
/// long as the bit is set) and call `cmx_mux_sink_writable()` when one is
/// writable; stop watching a sink whose bit is clear. Read it after draining
/// `cmx_mux_poll_transmit()`.
///
/// # Safety
/// `mux` is NULL or live; `mask` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_watch_mask(mux: *const cmx_mux, mask: *mut u32) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: `mux` NULL or live, `mask` NULL or writable, per this
        // function's contract.
        let (m, mask) = unsafe { (try_ref_from_ptr!(mux), try_mut_from_ptr!(mask)) };
        with_mux_ref(m, |e| {
            *mask = e.watch_mask();
            cmx_result::Ok
        })
    }
}

/// Sink `sink` is writable (or should be tried again): its queue is offered
/// through `cmx_mux_poll_transmit()`. Spurious calls are harmless.
///
/// # Safety
/// `mux` is NULL or live.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_sink_writable(mux: *mut cmx_mux, sink: usize) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: NULL or live per this function's contract.
        let m = unsafe { try_mut_from_ptr!(mux) };
        with_mux(m, |e| match e.sink_writable(sink) {
            Ok(()) => cmx_result::Ok,
            Err(_) => cmx_result::InvalidSink,
        })
    }
}

/// Stores in `*bytes` how many accepted bytes still wait in the queues of
/// `block` sinks that are open or being detached: what a caller that is
/// about to free the multiplexer writes out first (with a time limit) so
/// that nothing accepted is lost.
///
/// # Safety
/// `mux` is NULL or live; `bytes` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_lossless_backlog(
    mux: *const cmx_mux,
    bytes: *mut usize,
) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: `mux` NULL or live, `bytes` NULL or writable, per this
        // function's contract.
        let (m, bytes) = unsafe { (try_ref_from_ptr!(mux), try_mut_from_ptr!(bytes)) };
        with_mux_ref(m, |e| {
            *bytes = e.lossless_backlog();
            cmx_result::Ok
        })
    }
}
