//! Sink events and input in, frontend events out.

use super::enums::{cmx_frontend_event, cmx_sink_event};
use super::mux::{cmx_mux, put, with_mux, with_mux_ref};
use super::result::cmx_result;
use crate::engine::{FrontendEvent, SinkEvent};

/// Sink `sink` opened, closed or sent a break (`event` is a `cmx_sink_event`).
/// Opening a sink replays recent output to it if replay is on.
///
/// # Safety
/// `mux` is live.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_sink_event(
    mux: *mut cmx_mux,
    sink: usize,
    event: u32,
) -> cmx_result {
    let event = match cmx_sink_event::try_from(event) {
        Ok(cmx_sink_event::Opened) => SinkEvent::Opened,
        Ok(cmx_sink_event::Closed) => SinkEvent::Closed,
        Ok(cmx_sink_event::Break) => SinkEvent::Break,
        Err(_) => return cmx_result::InvalidEvent,
    };
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux(mux, |m| match m.sink_event(sink, event) {
            Ok(()) => cmx_result::Ok,
            Err(_) => cmx_result::InvalidSink,
        })
    }
}

/// Stores in `*event` the next event for the frontend, oldest first, or
/// `CMX_FRONTEND_EVENT_NONE`. Poll until NONE after every call that may
/// produce events (creation, `cmx_mux_sink_event()`, `cmx_mux_transmitted()`,
/// `cmx_mux_write()`).
///
/// # Safety
/// `mux` is live; `event` is writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_poll_event(
    mux: *mut cmx_mux,
    event: *mut cmx_frontend_event,
) -> cmx_result {
    if event.is_null() {
        return cmx_result::NullParameter;
    }
    put(event, cmx_frontend_event::None);
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux(mux, |m| {
            let ev = match m.poll_event() {
                None => cmx_frontend_event::None,
                Some(FrontendEvent::Opened) => cmx_frontend_event::Opened,
                Some(FrontendEvent::Closed) => cmx_frontend_event::Closed,
                Some(FrontendEvent::Break) => cmx_frontend_event::Break,
                Some(FrontendEvent::Writable) => cmx_frontend_event::Writable,
            };
            put(event, ev);
            cmx_result::Ok
        })
    }
}

/// Stores in `*room` how many bytes the caller should read from sink `sink`
/// now, given that the frontend can take `frontend_room` bytes: that many for
/// the input source, `CMX_INPUT_DISCARD_CHUNK` for any other sink (its input
/// is discarded).
///
/// # Safety
/// `mux` is live; `room` is writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_input_room(
    mux: *const cmx_mux,
    sink: usize,
    frontend_room: usize,
    room: *mut usize,
) -> cmx_result {
    if room.is_null() {
        return cmx_result::NullParameter;
    }
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux_ref(mux, |m| match m.input_room(sink, frontend_room) {
            Ok(n) => {
                put(room, n);
                cmx_result::Ok
            }
            Err(_) => cmx_result::InvalidSink,
        })
    }
}

/// `len` bytes of input were read from sink `sink`. `*forward` receives how
/// many of them, from the start, the caller passes to the frontend: up to
/// `frontend_room` from the input source, 0 from any other sink (its input
/// is discarded and counted). Input from the input source releases held
/// output (an echo is never held): drain `cmx_mux_poll_transmit()` after.
/// A caller that cannot keep unused bytes (a QEMU chardev backend cannot
/// push input back) reads no more than `cmx_mux_input_room()` allowed and
/// passes the same `frontend_room` here.
///
/// # Safety
/// `mux` is live; `forward` is writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_input(
    mux: *mut cmx_mux,
    sink: usize,
    len: usize,
    frontend_room: usize,
    forward: *mut usize,
) -> cmx_result {
    if forward.is_null() {
        return cmx_result::NullParameter;
    }
    put(forward, 0);
    // SAFETY: `mux` is NULL or live per the contract.
    unsafe {
        with_mux(mux, |m| match m.input(sink, len, frontend_room) {
            Ok(n) => {
                put(forward, n);
                cmx_result::Ok
            }
            Err(_) => cmx_result::InvalidSink,
        })
    }
}
