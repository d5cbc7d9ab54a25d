//! Run-time control: the input source, attaching and detaching sinks.

use super::boundary::{
    ffi_panic_boundary, try_config_from_ptr, try_ffi, try_mut_from_ptr, try_opt_mut_from_ptr,
};
use super::mux::{
    cmx_mux, cmx_sink_config, cmx_sink_stats, config_error, sink_from_c, stats_to_c, with_mux,
};
use super::result::cmx_result;
use crate::engine::{AttachError, DetachError, SinkState};

/// Makes sink `sink` the input source: from now on its input reaches the
/// frontend and the previous source's is discarded (counted in its
/// `input_discarded`). Input already passed to the frontend stays there, and
/// the frontend gets no event (a monitor keeps its session). A sink being
/// detached (or detached) cannot become the input (`CMX_RESULT_INVALID_SINK`).
///
/// # Safety
/// `mux` is NULL or live.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_set_input(mux: *mut cmx_mux, sink: usize) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: NULL or live, and not used by anyone else during the call,
        // per this function's contract.
        let m = unsafe { try_mut_from_ptr!(mux) };
        with_mux(m, |e| match e.set_input(Some(sink)) {
            Ok(()) => cmx_result::Ok,
            Err(_) => cmx_result::InvalidSink,
        })
    }
}

/// No sink is the input source any more: all input is discarded and counted.
///
/// # Safety
/// `mux` is NULL or live.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_clear_input(mux: *mut cmx_mux) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: NULL or live per this function's contract.
        let m = unsafe { try_mut_from_ptr!(mux) };
        with_mux(m, |e| match e.set_input(None) {
            Ok(()) => cmx_result::Ok,
            // Clearing names no sink.
            Err(_) => cmx_result::InvalidSink,
        })
    }
}

/// Adds a sink configured by `*config` (borrowed for the call; its `size`
/// must be `sizeof(cmx_sink_config)`) and stores its index in `*sink`: the
/// lowest free index (a released one is reused). An open sink is offered
/// the replay history first, then live output: no byte twice, none
/// missing. `config->input` makes it the input source. Poll events
/// afterwards: the first connected sink opens the frontend.
///
/// # Safety
/// `mux` is NULL or live; `config` is NULL or points to a readable
/// `cmx_sink_config` (only its leading `size` is read before it is
/// checked); `sink` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_attach(
    mux: *mut cmx_mux,
    config: *const cmx_sink_config,
    sink: *mut usize,
) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: `mux` NULL or live, `config` NULL or readable (size first),
        // `sink` NULL or writable, per this function's contract.
        let (m, config, sink) = unsafe {
            (
                try_mut_from_ptr!(mux),
                try_config_from_ptr!(config),
                try_mut_from_ptr!(sink),
            )
        };
        let input = config.input;
        let cfg = try_ffi!(sink_from_c(config));
        with_mux(m, |e| match e.attach(cfg) {
            Ok(i) => {
                if input && e.set_input(Some(i)).is_err() {
                    unreachable!("sink {i} was just attached");
                }
                *sink = i;
                cmx_result::Ok
            }
            Err(AttachError::Full) => cmx_result::SinkLimit,
            Err(AttachError::Config(err)) => config_error(err),
            Err(AttachError::OutOfMemory) => cmx_result::OutOfMemory,
        })
    }
}

const fn detach_error(e: DetachError) -> cmx_result {
    match e {
        DetachError::NoSuchSink(_) => cmx_result::InvalidSink,
        DetachError::LastSink(_) => cmx_result::LastSink,
    }
}

/// Starts detaching sink `sink` and returns at once: it gets no new output
/// and no longer holds the frontend back. A connected `block` sink with
/// bytes queued goes on being offered them by `cmx_mux_poll_transmit()`
/// (state `CMX_SINK_STATE_DETACHING`) until they are written, or it closes
/// or fails; any other sink is detached at once (a `drop` sink's queue is
/// discarded and counted). Either way `cmx_mux_poll_sink_report()` returns
/// `CMX_SINK_REPORT_KIND_DETACHED` for it when it is done (state
/// `CMX_SINK_STATE_DETACHED`): then call `cmx_mux_release()`. `*backlog`
/// (if not NULL) receives the bytes still queued. If it was the input
/// source there is none now. The last sink that receives output cannot be
/// detached (`CMX_RESULT_LAST_SINK`); detaching one that is being detached
/// (or is detached) changes nothing.
///
/// # Safety
/// `mux` is NULL or live; `backlog` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_detach(
    mux: *mut cmx_mux,
    sink: usize,
    backlog: *mut usize,
) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: `mux` NULL or live, `backlog` NULL or writable, per this
        // function's contract.
        let (m, backlog) = unsafe { (try_mut_from_ptr!(mux), try_opt_mut_from_ptr!(backlog)) };
        with_mux(m, |e| {
            let n = try_ffi!(e.detach(sink).map_err(detach_error));
            if let Some(b) = backlog {
                *b = n;
            }
            cmx_result::Ok
        })
    }
}

/// Removes sink `sink` (detaching it first if needed): what it still has
/// queued is discarded and counted as dropped, `*last` (if not NULL)
/// receives its final statistics (state `CMX_SINK_STATE_DETACHED`), and
/// its index is free for a later `cmx_mux_attach()`; until then every call
/// refuses it (`CMX_RESULT_INVALID_SINK`). No `CMX_SINK_REPORT_KIND_DETACHED`
/// follows (the caller knows). The caller stops watching it and may close
/// it.
///
/// # Safety
/// `mux` is NULL or live; `last` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_release(
    mux: *mut cmx_mux,
    sink: usize,
    last: *mut cmx_sink_stats,
) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: `mux` NULL or live, `last` NULL or writable, per this
        // function's contract.
        let (m, last) = unsafe { (try_mut_from_ptr!(mux), try_opt_mut_from_ptr!(last)) };
        with_mux(m, |e| {
            let overflow = try_ffi!(e.overflow(sink).map_err(|_| cmx_result::InvalidSink));
            let st = try_ffi!(e.release(sink).map_err(detach_error));
            if let Some(l) = last {
                *l = stats_to_c(&st, SinkState::Detached, overflow);
            }
            cmx_result::Ok
        })
    }
}
