//! Sink events and input in; frontend events and sink reports out.

use super::boundary::{ffi_panic_boundary, try_ffi, try_mut_from_ptr, try_ref_from_ptr};
use super::enums::{cmx_frontend_event, cmx_sink_event, cmx_sink_report_kind};
use super::mux::{cmx_mux, drop_unit_to_c, with_mux, with_mux_ref};
use super::result::cmx_result;
use crate::engine::{FrontendEvent, SinkEvent, SinkReport};

/// A report about one sink, from `cmx_mux_poll_sink_report()`: for whoever
/// manages the sinks (QEMU turns them into QMP events, and releases a sink
/// once it is detached). The fields a kind does not use are 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct cmx_sink_report {
    /// A `cmx_sink_report_kind` value; `CMX_SINK_REPORT_KIND_NONE` when no
    /// report is pending.
    pub kind: u32,
    /// `FAILED`: the errno of the write that failed.
    pub errnum: i32,
    /// The sink's index at the time (a released index may be reused by a
    /// later attach).
    pub sink: usize,
    /// `DROP_STARTED` and `DROP_STOPPED`: bytes the sink has dropped so far.
    pub dropped: u64,
    /// `DROP_STOPPED`: bytes dropped in the episode that ended.
    pub episode: u64,
    /// `DROP_STARTED`: the sink's `cmx_drop_unit`.
    pub drop_unit: u32,
}

/// Sink `sink` opened, closed or sent a break (`event` is a `cmx_sink_event`).
/// Opening a sink replays recent output to it if replay is on; opening a
/// failed sink makes it open again. A sink being detached only heeds
/// CLOSED (which discards its queue and finishes detaching it).
///
/// May come between `cmx_mux_poll_transmit()` and `cmx_mux_transmitted()`
/// (a backend that hangs up inside the caller's write delivers CLOSED
/// there): CLOSED withdraws that sink's bytes that are out with the
/// caller, and the report for them is then accepted (`CMX_RESULT_OK`) and
/// ignored, even if the sink opened again in between. Bytes out for
/// another sink stay valid.
///
/// # Safety
/// `mux` is NULL or live.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_sink_event(
    mux: *mut cmx_mux,
    sink: usize,
    event: u32,
) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: NULL or live, used by no one else during the call, per this
        // function's contract.
        let m = unsafe { try_mut_from_ptr!(mux) };
        let event = match cmx_sink_event::try_from(event) {
            Ok(cmx_sink_event::Opened) => SinkEvent::Opened,
            Ok(cmx_sink_event::Closed) => SinkEvent::Closed,
            Ok(cmx_sink_event::Break) => SinkEvent::Break,
            Err(_) => return cmx_result::InvalidEvent,
        };
        with_mux(m, |e| match e.sink_event(sink, event) {
            Ok(()) => cmx_result::Ok,
            Err(_) => cmx_result::InvalidSink,
        })
    }
}

/// Stores in `*event` the next event for the frontend, oldest first, or
/// `CMX_FRONTEND_EVENT_NONE`. Poll until NONE after every call that may
/// produce events (creation, `cmx_mux_sink_event()`, `cmx_mux_transmitted()`,
/// `cmx_mux_write()`, attaching and detaching).
///
/// # Safety
/// `mux` is NULL or live; `event` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_poll_event(
    mux: *mut cmx_mux,
    event: *mut cmx_frontend_event,
) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: `mux` NULL or live, `event` NULL or writable, per this
        // function's contract.
        let (m, event) = unsafe { (try_mut_from_ptr!(mux), try_mut_from_ptr!(event)) };
        with_mux(m, |e| {
            *event = match e.poll_event() {
                None => cmx_frontend_event::None,
                Some(FrontendEvent::Opened) => cmx_frontend_event::Opened,
                Some(FrontendEvent::Closed) => cmx_frontend_event::Closed,
                Some(FrontendEvent::Break) => cmx_frontend_event::Break,
                Some(FrontendEvent::Writable) => cmx_frontend_event::Writable,
            };
            cmx_result::Ok
        })
    }
}

/// Stores in `*report` the next report about a sink, oldest first, or one
/// of kind `CMX_SINK_REPORT_KIND_NONE`: a `drop` sink started or stopped
/// dropping, a sink failed, a sink finished detaching. Poll until NONE
/// after every call, as for `cmx_mux_poll_event()`: the queue is bounded,
/// and reports left unpolled are discarded (the oldest first, DETACHED
/// last) and counted in `cmx_mux_counters.reports_lost`.
///
/// # Safety
/// `mux` is NULL or live; `report` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_poll_sink_report(
    mux: *mut cmx_mux,
    report: *mut cmx_sink_report,
) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: `mux` NULL or live, `report` NULL or writable, per this
        // function's contract.
        let (m, report) = unsafe { (try_mut_from_ptr!(mux), try_mut_from_ptr!(report)) };
        with_mux(m, |e| {
            *report = e.poll_sink_report().map_or_else(cmx_sink_report::default, report_to_c);
            cmx_result::Ok
        })
    }
}

fn report_to_c(r: SinkReport) -> cmx_sink_report {
    let none = cmx_sink_report::default();
    match r {
        SinkReport::DropStarted {
            sink,
            unit,
            dropped,
        } => cmx_sink_report {
            kind: cmx_sink_report_kind::DropStarted.into(),
            sink,
            dropped,
            drop_unit: drop_unit_to_c(unit).into(),
            ..none
        },
        SinkReport::DropStopped {
            sink,
            episode,
            dropped,
        } => cmx_sink_report {
            kind: cmx_sink_report_kind::DropStopped.into(),
            sink,
            dropped,
            episode,
            ..none
        },
        SinkReport::Failed { sink, errno } => cmx_sink_report {
            kind: cmx_sink_report_kind::Failed.into(),
            sink,
            errnum: errno,
            ..none
        },
        SinkReport::Detached { sink } => cmx_sink_report {
            kind: cmx_sink_report_kind::Detached.into(),
            sink,
            ..none
        },
    }
}

/// Stores in `*room` how many bytes the caller should read from sink `sink`
/// now, given that the frontend can take `frontend_room` bytes: that many for
/// the input source, `CMX_INPUT_DISCARD_CHUNK` for any other sink (its input
/// is discarded).
///
/// # Safety
/// `mux` is NULL or live; `room` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_input_room(
    mux: *const cmx_mux,
    sink: usize,
    frontend_room: usize,
    room: *mut usize,
) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: `mux` NULL or live, `room` NULL or writable, per this
        // function's contract.
        let (m, room) = unsafe { (try_ref_from_ptr!(mux), try_mut_from_ptr!(room)) };
        with_mux_ref(m, |e| {
            *room = try_ffi!(e
                .input_room(sink, frontend_room)
                .map_err(|_| cmx_result::InvalidSink));
            cmx_result::Ok
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
/// `mux` is NULL or live; `forward` is NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_input(
    mux: *mut cmx_mux,
    sink: usize,
    len: usize,
    frontend_room: usize,
    forward: *mut usize,
) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: `mux` NULL or live, `forward` NULL or writable, per this
        // function's contract.
        let (m, forward) = unsafe { (try_mut_from_ptr!(mux), try_mut_from_ptr!(forward)) };
        with_mux(m, |e| {
            *forward = try_ffi!(e
                .input(sink, len, frontend_room)
                .map_err(|_| cmx_result::InvalidSink));
            cmx_result::Ok
        })
    }
}
