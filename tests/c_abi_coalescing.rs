//! Coalescing through the C ABI (`cmx_mux_write_at`, `cmx_mux_poll_timeout`,
//! `cmx_mux_handle_timeout`) with real socketpairs. The clock is scripted (the library
//! takes the caller's time), so what is held and what goes out is exact.

mod harness;

use std::ptr::null_mut;

use harness::*;

const US: u64 = 1_000;
const MS: u64 = 1_000_000;

/// Streams `data` one byte per call, `gap` ns apart, flushing on time as a
/// caller's timer would and servicing the sockets now and then. Returns the
/// time after the last byte.
fn stream_one_byte_at_a_time(rig: &mut Rig, data: &[u8], gap: u64) -> u64 {
    let mut now = 0;
    for (k, b) in data.iter().enumerate() {
        now += gap;
        if let Some(at) = rig.mux.poll_timeout() {
            assert!(
                at <= now + MS,
                "deadline {at} more than a window after {now}"
            );
            if at <= now {
                rig.mux.handle_timeout(now);
            }
        }
        let (r, acc) = rig.mux.write_at(std::slice::from_ref(b), now);
        assert_eq!((r, acc), (cmx_result::Ok, 1), "byte {k}");
        if k % 64 == 0 {
            rig.service(0);
        }
    }
    rig.mux.handle_timeout(now);
    now
}

fn writes_for(coalesce: u64, data: &[u8]) -> u64 {
    let cfg = Cfg::new(&[block(), drop_sink()]).coalesce(coalesce);
    let mut rig = Rig::new(&cfg);
    // 5 us per byte: about the test guest's 0.2 MiB/s.
    stream_one_byte_at_a_time(&mut rig, data, 5 * US);
    rig.drain();
    for i in 0..2 {
        assert_bytes_eq(&format!("sink {i}"), rig.received(i), data);
        let st = rig.mux.stats(i);
        assert_eq!(
            (st.delivered, st.queued, st.dropped),
            (data.len() as u64, 0, 0)
        );
    }
    rig.mux.ctx.write_calls
}

#[test]
fn one_byte_writes_become_one_write_per_window_per_sink() {
    let data = stream(20_000);
    let plain = writes_for(0, &data);
    let coalesced = writes_for(MS, &data);
    assert_eq!(
        plain,
        2 * 20_000,
        "without coalescing every byte is a write per sink"
    );
    // 100 ms of output: the first byte, then one write per 1 ms window, per sink.
    assert!(coalesced <= 2 * 102, "{coalesced} writes");
}

#[test]
fn output_after_a_quiet_window_is_readable_at_once_and_the_rest_by_the_deadline() {
    let cfg = Cfg::new(&[block()]).coalesce(MS);
    let mut rig = Rig::new(&cfg);
    let t0 = 50 * MS;
    assert_eq!(rig.mux.write_at(b"x", t0), (cmx_result::Ok, 1));
    assert_eq!(rig.mux.poll_timeout(), None);
    assert_eq!(rig.collect(0), b"x", "a keystroke's echo is not held");
    assert_eq!(rig.mux.write_at(b"yz", t0 + 10 * US), (cmx_result::Ok, 2));
    assert_eq!(rig.collect(0), b"x", "output right after output is held");
    assert_eq!(rig.mux.stats(0).queued, 2);
    assert_eq!(rig.mux.poll_timeout(), Some(t0 + MS));
    rig.mux.handle_timeout(t0 + MS);
    assert_eq!(rig.mux.poll_timeout(), None);
    assert_eq!(rig.collect(0), b"xyz");
    // A plain cmx_mux_write() never holds anything back.
    assert_eq!(rig.mux.write_at(b"1", t0 + MS + 1), (cmx_result::Ok, 1));
    assert_eq!(rig.mux.write(b"2"), (cmx_result::Ok, 1));
    assert_eq!(rig.collect(0), b"xyz12");
}

#[test]
fn a_keystroke_releases_held_output_and_its_echo_is_not_held() {
    let cfg = Cfg::new(&[sink(cmx_overflow::Block, true, true)]).coalesce(MS);
    let mut rig = Rig::new(&cfg);
    let t0 = 50 * MS;
    assert_eq!(rig.mux.write_at(b"login: ", t0), (cmx_result::Ok, 7));
    assert_eq!(rig.mux.write_at(b"held", t0 + US), (cmx_result::Ok, 4));
    assert_eq!(rig.collect(0), b"login: ");
    // Input from the input source: what was held is offered at once.
    assert_eq!(rig.mux.input(0, b"r", 1), 1);
    assert_eq!(rig.mux.poll_timeout(), None);
    assert_eq!(rig.collect(0), b"login: held");
    assert_eq!(rig.mux.ctx.guest, b"r");
    assert_eq!(rig.mux.write_at(b"r", t0 + 2 * US), (cmx_result::Ok, 1));
    assert_eq!(rig.collect(0), b"login: heldr", "the echo was held");
}

#[test]
fn a_stalled_drop_viewer_does_not_hold_up_the_coalesced_log() {
    let cfg = Cfg::new(&[block(), drop_sink()]).queue(4096).coalesce(MS);
    let mut rig = Rig::with_tiny_buffers(&cfg);
    rig.pause(1, true);
    let data = stream(200_000);
    stream_one_byte_at_a_time(&mut rig, &data, 5 * US);
    rig.drain();
    assert_bytes_eq("log", rig.received(0), &data);
    let viewer = rig.mux.stats(1);
    assert_balanced("viewer", &viewer);
    assert!(viewer.dropped > 100_000, "{viewer:?}");
    assert_eq!(rig.mux.stats(0).backpressure_events, 0);
}

#[test]
fn coalescing_arguments_are_checked() {
    let cfg = Cfg::new(&[block()]).coalesce(CMX_MAX_COALESCE_NS + 1);
    assert_eq!(
        Mux::new(&cfg).err(),
        Some(cmx_result::ConfigCoalesceTooLong)
    );
    // SAFETY: documented as a static NUL-terminated string.
    let msg = unsafe { std::ffi::CStr::from_ptr(cmx_result_str(109)) };
    let msg = msg.to_str().unwrap();
    assert!(msg.contains("100 ms"), "{msg}");
    let mut mux = Mux::new(&Cfg::new(&[block()]).coalesce(CMX_MAX_COALESCE_NS)).unwrap();
    let mut at = 7u64;
    let mut pending = true;
    // SAFETY: live mux; the NULL arguments are refused before use.
    unsafe {
        assert_eq!(
            cmx_mux_poll_timeout(mux.raw, null_mut(), &mut at),
            cmx_result::NullParameter
        );
        assert_eq!(
            cmx_mux_poll_timeout(mux.raw, &mut pending, null_mut()),
            cmx_result::NullParameter
        );
        assert_eq!(
            cmx_mux_poll_timeout(null_mut(), &mut pending, &mut at),
            cmx_result::NullParameter
        );
        assert_eq!(
            cmx_mux_handle_timeout(null_mut(), 0),
            cmx_result::NullParameter
        );
        assert_eq!(
            cmx_mux_write_at(mux.raw, std::ptr::null(), 1, 0, &mut 0),
            cmx_result::NullParameter
        );
    }
    assert_eq!(mux.poll_timeout(), None);
    assert_eq!(mux.write_at(b"", 0), (cmx_result::Ok, 0));
}
