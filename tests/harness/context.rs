//! The caller's side of a multiplexer ([`Ctx`]): the sink fds it writes to,
//! and what it wrote, watched and delivered to the frontend.

use super::*;

/// Writes bytes that `cmx_mux_poll_transmit()` handed out for a sink and
/// returns what `cmx_mux_transmitted()` is told: bytes taken or `-errno`.
/// [`sink_write`] is the real one; a test may wrap it to inject faults.
pub type WriteFn = fn(&mut Ctx, usize, &[u8]) -> isize;

/// What the caller did and saw. The library never calls out, so this is
/// plain data, updated by [`Mux::settle`] after every call.
#[derive(Default)]
pub struct Ctx {
    /// The fd [`sink_write`] writes to, per sink (-1: none).
    pub fds: Vec<RawFd>,
    /// Whether the caller watches each sink for writability: bit k of
    /// `cmx_mux_watch_mask()` after the last call.
    pub watching: Vec<bool>,
    /// Times a sink's watch was started or stopped.
    pub watch_calls: u64,
    /// `CMX_FRONTEND_EVENT_WRITABLE` events (the frontend may write again).
    pub woken: u64,
    /// Every other frontend event (OPENED, CLOSED, BREAK), in order.
    pub events: Vec<cmx_frontend_event>,
    /// Everything delivered to the frontend as input: the guest's input.
    pub guest: Vec<u8>,
    /// Length of each delivery to the frontend.
    pub input_calls: Vec<usize>,
    /// Calls of the write function (one per transmit handed out).
    pub write_calls: u64,
    /// Writes that took fewer bytes than offered (but some).
    pub short_writes: u64,
    pub eagain: u64,
    /// (sink, errno) of every hard write error reported to the library.
    pub write_errors: Vec<(usize, i32)>,
    /// Every report from `cmx_mux_poll_sink_report()`, in order.
    pub reports: Vec<cmx_sink_report>,
}

impl Ctx {
    pub fn new(n_sinks: usize) -> Ctx {
        Ctx {
            fds: vec![-1; n_sinks],
            watching: vec![false; n_sinks],
            ..Ctx::default()
        }
    }

    pub fn fd(&self, sink: usize) -> RawFd {
        self.fds.get(sink).copied().unwrap_or(-1)
    }
}

/// One non-blocking `write(2)` to the sink's fd, as a C caller does with
/// what `cmx_mux_poll_transmit()` handed out.
pub fn sink_write(c: &mut Ctx, sink: usize, data: &[u8]) -> isize {
    c.write_calls += 1;
    // SAFETY: `data` is valid for `data.len()` bytes.
    let n = unsafe { libc::write(c.fd(sink), data.as_ptr().cast(), data.len()) };
    if n < 0 {
        let e = errno();
        if e == libc::EAGAIN {
            c.eagain += 1;
        } else if e != libc::EINTR {
            c.write_errors.push((sink, e));
        }
        return -(e as isize);
    }
    if (n as usize) < data.len() {
        c.short_writes += 1;
    }
    n
}
