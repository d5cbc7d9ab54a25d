//! The C ABI fed arbitrary configurations and arguments: NULL pointers, bad
//! sink indexes and event values, and callbacks that return anything
//! (EAGAIN, hard errors, EINTR, more than they were given). Nothing may crash,
//! every result must be a known code, and the counters must always add up.
#![no_main]

use core::ffi::c_void;
use core::ptr::{null, null_mut};

use chardev_multiplex::ffi::*;
use libfuzzer_sys::fuzz_target;

#[path = "bytes.rs"]
mod bytes;
use bytes::Bytes;

/// What the callbacks answer, taken from the fuzz input in turn.
struct Script {
    answers: Vec<u8>,
    next: usize,
}

unsafe extern "C" fn sink_write(
    opaque: *mut c_void,
    _sink: usize,
    _d: *const u8,
    len: usize,
) -> isize {
    // SAFETY: the opaque pointer is the Script owned by the fuzz body.
    let s = unsafe { &mut *(opaque as *mut Script) };
    let a = s
        .answers
        .get(s.next % s.answers.len().max(1))
        .copied()
        .unwrap_or(0);
    s.next += 1;
    match a % 8 {
        0 => len as isize,
        1 => -(libc::EAGAIN as isize),
        2 => (a as usize % (len + 1)) as isize,
        3 => -(libc::EPIPE as isize),
        4 => -(libc::EINTR as isize),
        5 => len as isize + 1 + a as isize,
        6 => isize::MIN,
        _ => 0,
    }
}

unsafe extern "C" fn sink_watch(_o: *mut c_void, _sink: usize, _enable: bool) {}
unsafe extern "C" fn frontend_writable(_o: *mut c_void) {}
unsafe extern "C" fn frontend_input(_o: *mut c_void, d: *const u8, len: usize) {
    assert!(!d.is_null() && len > 0);
}
unsafe extern "C" fn frontend_event(_o: *mut c_void, _e: cmx_frontend_event) {}

fn known(r: cmx_result) {
    assert!(cmx_result::ALL.contains(&r), "unknown result {r:?}");
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let n_sinks = b.small() % 11;
    let sinks: Vec<cmx_sink_config> = (0..n_sinks)
        .map(|_| {
            let x = b.small();
            cmx_sink_config {
                overflow: if x & 0x70 == 0x70 {
                    x as u32
                } else {
                    (x & 1) as u32
                },
                open: x & 2 != 0,
                input: x & 0x0c == 0x0c,
            }
        })
        .collect();
    let queue = match b.small() % 6 {
        0 => 0,
        1 => CMX_MAX_QUEUE_CAPACITY + 1,
        2 => usize::MAX,
        _ => 1 + b.small() * 7,
    };
    let replay = match b.small() % 4 {
        0 => 0,
        1 => queue.wrapping_add(1),
        _ => b.small().min(queue),
    };
    let config = cmx_mux_config {
        sinks: if b.small() == 0xff {
            null()
        } else {
            sinks.as_ptr()
        },
        n_sinks,
        queue_capacity: queue,
        replay_capacity: replay,
        // Mostly off or small; now and then over the maximum.
        coalesce_ns: match b.small() % 4 {
            0 => 0,
            1 => CMX_MAX_COALESCE_NS + 1,
            k => k as u64 * 50,
        },
    };
    let mut script = Script {
        answers: b.0.iter().rev().copied().collect(),
        next: 0,
    };
    let callbacks = cmx_callbacks {
        sink_write: Some(sink_write),
        sink_watch: Some(sink_watch),
        frontend_writable: Some(frontend_writable),
        frontend_input: Some(frontend_input),
        frontend_event: Some(frontend_event),
    };
    let mut mux = null_mut();
    let opaque = &mut script as *mut Script as *mut c_void;
    // SAFETY: every pointer is valid or NULL, as the C contract allows.
    let r = unsafe { cmx_mux_new(&config, &callbacks, opaque, &mut mux) };
    known(r);
    if r != cmx_result::Ok {
        assert!(mux.is_null());
        return;
    }
    let payload = [0x5au8; 512];
    let mut out = 0usize;
    let mut st = cmx_sink_stats::default();
    let mut now = 0u64;
    let (mut pending, mut deadline) = (false, 0u64);
    while let Some(tag) = b.byte() {
        let sink = match b.small() {
            0xff => usize::MAX,
            x => x % (n_sinks + 2),
        };
        let len = b.small() * 2;
        // SAFETY: `mux` is live; the other pointers are valid or deliberately NULL.
        let r = unsafe {
            match tag % 12 {
                0 => cmx_mux_write(mux, payload.as_ptr(), len, &mut out),
                1 => cmx_mux_write(mux, null(), len, &mut out),
                2 => cmx_mux_write(mux, payload.as_ptr(), len, null_mut()),
                3 => cmx_mux_sink_writable(mux, sink),
                4 => cmx_mux_sink_event(mux, sink, tag as u32 / 9 % 4),
                5 => cmx_mux_input_room(mux, sink, len, &mut out),
                6 => cmx_mux_input(mux, sink, payload.as_ptr(), len, b.small(), &mut out),
                7 => cmx_mux_write_room(mux, &mut out),
                9 => {
                    now += b.small() as u64;
                    cmx_mux_write_at(mux, payload.as_ptr(), len, now, &mut out)
                }
                10 => cmx_mux_flush(mux, now),
                11 if len == 0 => cmx_mux_flush_deadline(mux, null_mut(), &mut deadline),
                11 => cmx_mux_flush_deadline(mux, &mut pending, &mut deadline),
                _ => cmx_mux_sink_stats(mux, sink, if len == 0 { null_mut() } else { &mut st }),
            }
        };
        known(r);
        assert_ne!(r, cmx_result::Panic);
    }
    for i in 0..n_sinks {
        // SAFETY: `mux` is live; `st` is writable.
        assert_eq!(
            unsafe { cmx_mux_sink_stats(mux, i, &mut st) },
            cmx_result::Ok
        );
        assert_eq!(st.offered, st.delivered + st.queued + st.dropped);
    }
    // SAFETY: `mux` came from cmx_mux_new and is freed once.
    assert_eq!(unsafe { cmx_mux_free(mux) }, cmx_result::Ok);
});
