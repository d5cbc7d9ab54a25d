//! Output to the sinks: `cmx_mux_poll_transmit()` hands out bytes,
//! `cmx_mux_transmitted()` reports what the sink took, and the caller
//! watches the sinks in `cmx_mux_watch_mask()`.

use core::ffi::c_int;

use super::mux::{cmx_mux, put, with_mux, with_mux_ref};
use super::result::cmx_result;
use crate::engine::{TransmitError, WriteOutcome};

/// Bytes to write to a sink, from `cmx_mux_poll_transmit()`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct cmx_transmit {
    /// The sink's index.
    pub sink: usize,
    /// The bytes: owned by the multiplexer, valid until the next call on it
    /// other than `cmx_mux_sink_event()` for another sink. NULL when `len` is 0.
    pub data: *const u8,
    /// How many; 0 when nothing is to be written now.
    pub len: usize,
}

/// Stores in `*out` the next bytes to write, the front of one sink's queue,
/// or `len` 0 when nothing is to be written now. Write them (or some of them)
/// to sink `out->sink` without blocking, then report with
/// `cmx_mux_transmitted()` before anything else; asking again first hands out
/// the same bytes. A caller drains by calling this until `len` is 0.
///
/// # Safety
/// `mux` is live; `out` is writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_poll_transmit(
    mux: *mut cmx_mux,
    out: *mut cmx_transmit,
) -> cmx_result {
    if out.is_null() {
        return cmx_result::NullParameter;
    }
    put(
        out,
        cmx_transmit {
            sink: 0,
            data: core::ptr::null(),
            len: 0,
        },
    );
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux(mux, |m| {
            if let Some(t) = m.poll_transmit() {
                put(
                    out,
                    cmx_transmit {
                        sink: t.sink,
                        data: t.data.as_ptr(),
                        len: t.data.len(),
                    },
                );
            }
            cmx_result::Ok
        })
    }
}

/// Reports what became of the bytes `cmx_mux_poll_transmit()` handed out for
/// `sink`: `result` >= 0 is how many the sink took (0 counts as would-block;
/// more than handed out marks the sink failed with EINVAL), `-EAGAIN` or
/// `-EWOULDBLOCK` means it took none (watch it: it is in
/// `cmx_mux_watch_mask()`), `-EINTR` offers them again, any other negative
/// value is `-errno` of a hard error, which marks the sink failed. A sink
/// that closed meanwhile (its write failed and it disconnected) ignores the
/// report; `CMX_RESULT_NOT_OFFERED` means nothing of that open sink was out.
///
/// # Safety
/// `mux` is live.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_transmitted(
    mux: *mut cmx_mux,
    sink: usize,
    result: isize,
) -> cmx_result {
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
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux(mux, |m| match m.transmitted(sink, outcome) {
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
/// `mux` is live; `mask` is writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_watch_mask(mux: *const cmx_mux, mask: *mut u32) -> cmx_result {
    if mask.is_null() {
        return cmx_result::NullParameter;
    }
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux_ref(mux, |m| {
            put(mask, m.watch_mask());
            cmx_result::Ok
        })
    }
}

/// Sink `sink` is writable (or should be tried again): its queue is offered
/// through `cmx_mux_poll_transmit()`. Spurious calls are harmless.
///
/// # Safety
/// `mux` is live.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_sink_writable(mux: *mut cmx_mux, sink: usize) -> cmx_result {
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux(mux, |m| match m.sink_writable(sink) {
            Ok(()) => cmx_result::Ok,
            Err(_) => cmx_result::InvalidSink,
        })
    }
}

/// Stores in `*bytes` how many accepted bytes still wait in the queues of
/// open `block` sinks: what a caller that is about to free the multiplexer
/// writes out first (with a time limit) so that nothing accepted is lost.
///
/// # Safety
/// `mux` is live; `bytes` is writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_lossless_backlog(
    mux: *const cmx_mux,
    bytes: *mut usize,
) -> cmx_result {
    if bytes.is_null() {
        return cmx_result::NullParameter;
    }
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux_ref(mux, |m| {
            put(bytes, m.lossless_backlog());
            cmx_result::Ok
        })
    }
}
