//! Run-time control: the input source, attaching and detaching sinks.

use super::boundary::try_ffi;
use super::mux::{
    cmx_mux, cmx_sink_config, cmx_sink_stats, put, sink_from_c, stats_to_c, with_mux,
};
use super::result::cmx_result;
use crate::engine::{AttachError, DetachError};

/// Makes sink `sink` the input source: from now on its input reaches the
/// frontend and the previous source's is discarded (counted in its
/// `input_discarded`). Input already passed to the frontend stays there, and
/// the frontend gets no event (a monitor keeps its session).
///
/// # Safety
/// `mux` is live.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_set_input(mux: *mut cmx_mux, sink: usize) -> cmx_result {
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux(mux, |m| match m.set_input(Some(sink)) {
            Ok(()) => cmx_result::Ok,
            Err(_) => cmx_result::InvalidSink,
        })
    }
}

/// No sink is the input source any more: all input is discarded and counted.
///
/// # Safety
/// `mux` is live.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_clear_input(mux: *mut cmx_mux) -> cmx_result {
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux(mux, |m| {
            // Clearing cannot name a wrong sink.
            let _ = m.set_input(None);
            cmx_result::Ok
        })
    }
}

/// Adds a sink configured by `*config` (borrowed for the call) and stores its
/// index in `*sink`: the lowest free index (a released one is reused). An
/// open sink is offered the replay history first, then live output: no byte
/// twice, none missing. `config->input` makes it the input source. Poll
/// events afterwards: the first connected sink opens the frontend.
///
/// # Safety
/// `mux` is live; `config` is NULL or readable; `sink` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_attach(
    mux: *mut cmx_mux,
    config: *const cmx_sink_config,
    sink: *mut usize,
) -> cmx_result {
    if sink.is_null() {
        return cmx_result::NullParameter;
    }
    // SAFETY: NULL or readable per the contract; borrowed for this call.
    let Some(config) = (unsafe { config.as_ref() }) else {
        return cmx_result::NullParameter;
    };
    let input = config.input;
    let cfg = try_ffi!(sink_from_c(config));
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux(mux, |m| match m.attach(cfg) {
            Ok(i) => {
                if input {
                    // `i` was just attached: it exists.
                    let _ = m.set_input(Some(i));
                }
                put(sink, i);
                cmx_result::Ok
            }
            Err(AttachError::Full) => cmx_result::SinkLimit,
            Err(AttachError::Config(e)) => super::mux::config_error(e),
            Err(AttachError::OutOfMemory) => cmx_result::OutOfMemory,
        })
    }
}

fn detach_error(e: DetachError) -> cmx_result {
    match e {
        DetachError::NoSuchSink(_) => cmx_result::InvalidSink,
        DetachError::LastSink(_) => cmx_result::LastSink,
    }
}

/// Starts detaching sink `sink`: it gets no new output and no longer holds
/// the frontend back; a `drop` sink's queue is discarded (counted), a `block`
/// sink's goes on being offered by `cmx_mux_poll_transmit()` so that the
/// caller can write it out. `*backlog` (if not NULL) receives the bytes still
/// queued. If it was the input source there is none now. Finish with
/// `cmx_mux_release()` once the backlog is written (its `queued` statistic
/// is 0) or the caller gives up. The last sink that receives output cannot
/// be detached (`CMX_RESULT_LAST_SINK`).
///
/// # Safety
/// `mux` is live; `backlog` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_detach(
    mux: *mut cmx_mux,
    sink: usize,
    backlog: *mut usize,
) -> cmx_result {
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux(mux, |m| match m.detach(sink) {
            Ok(n) => {
                if !backlog.is_null() {
                    put(backlog, n);
                }
                cmx_result::Ok
            }
            Err(e) => detach_error(e),
        })
    }
}

/// Removes sink `sink` (detaching it first if needed): what it still has
/// queued is discarded and counted as dropped, `*last` (if not NULL)
/// receives its final statistics, and its index is free for a later
/// `cmx_mux_attach()`. The caller stops watching it and may close it.
///
/// # Safety
/// `mux` is live; `last` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_release(
    mux: *mut cmx_mux,
    sink: usize,
    last: *mut cmx_sink_stats,
) -> cmx_result {
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux(mux, |m| {
            let overflow = m.overflow(sink);
            match m.release(sink) {
                Ok(st) => {
                    if !last.is_null() {
                        put(
                            last,
                            stats_to_c(&st, crate::engine::SinkState::Detached, overflow.unwrap()),
                        );
                    }
                    cmx_result::Ok
                }
                Err(e) => detach_error(e),
            }
        })
    }
}
