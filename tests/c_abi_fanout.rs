//! Fan-out through the C ABI to real non-blocking socketpairs: every sink
//! receives every byte, in order, whatever the write sizes, socket buffer
//! sizes or reading style.

mod harness;

use std::os::fd::AsRawFd;

use harness::*;

/// Every open sink's peer got exactly `want`, and its counters agree.
#[track_caller]
fn assert_everyone_got(rig: &Rig, want: &[u8]) {
    for i in 0..rig.mux.n_sinks() {
        assert_bytes_eq(&format!("sink {i}"), rig.received(i), want);
        let st = rig.mux.stats(i);
        assert_eq!(st.state, OPEN);
        assert_eq!(
            (st.offered, st.delivered, st.queued, st.dropped),
            (want.len() as u64, want.len() as u64, 0, 0),
            "sink {i}: {st:?}"
        );
        assert_eq!(st.write_errors, 0);
    }
}

fn fan_out(n: usize, total: usize) {
    let cfg = Cfg::new(&vec![block(); n]);
    let mut rig = Rig::new(&cfg);
    assert_eq!(
        rig.mux.ctx.events,
        [cmx_frontend_event::Opened],
        "open sinks at creation tell the frontend OPENED"
    );
    let data = stream(total);
    rig.pump_all(&data);
    rig.drain();
    assert_everyone_got(&rig, &data);
}

#[test]
fn fan_out_to_2_socketpair_sinks_is_byte_exact() {
    fan_out(2, 2 << 20);
}

#[test]
fn fan_out_to_8_socketpair_sinks_is_byte_exact() {
    fan_out(8, 1 << 20);
}

#[test]
fn fan_out_to_8_sinks_read_by_threads_is_byte_exact() {
    let cfg = Cfg::new(&[block(); 8]);
    let mut rig = Rig::new(&cfg);
    let readers = rig.spawn_readers();
    let data = stream(4 << 20);
    rig.chunks = Chunks::random(16384);
    rig.pump_all(&data);
    rig.flush_and_close();
    for (i, r) in readers.into_iter().enumerate() {
        let got = r.unwrap().join().expect("reader thread");
        assert_bytes_eq(&format!("sink {i}"), &got, &data);
        let st = rig.mux.stats(i);
        assert_eq!(
            (st.delivered, st.queued, st.dropped),
            (data.len() as u64, 0, 0)
        );
    }
}

#[test]
fn one_byte_writes_fan_out_byte_exact() {
    let mut rig = Rig::new(&Cfg::new(&[block(), block(), drop_sink()]));
    rig.chunks = Chunks::Fixed(1);
    let data = stream(20_000);
    rig.pump_all(&data);
    rig.drain();
    assert_everyone_got(&rig, &data);
}

#[test]
fn tiny_socket_buffers_force_partial_writes_and_stay_byte_exact() {
    let cfg = Cfg::new(&[block(), block(), block()]).queue(16384);
    let mut rig = Rig::with_tiny_buffers(&cfg);
    let (snd, rcv) = shrink_socket_buffers(rig.ours[0].as_ref().unwrap().as_raw_fd());
    assert!(
        snd <= 8192 && rcv <= 8192,
        "buffers not shrunk: {snd} {rcv}"
    );
    rig.chunks = Chunks::Fixed(8192);
    let data = stream(1 << 20);
    rig.pump_all(&data);
    rig.drain();
    assert_everyone_got(&rig, &data);
    let ctx = &rig.mux.ctx;
    assert!(
        ctx.short_writes > 0,
        "no partial write seen ({} writes, {} EAGAIN)",
        ctx.write_calls,
        ctx.eagain
    );
    assert!(ctx.eagain > 0, "never hit EAGAIN");
    for i in 0..3 {
        assert!(rig.mux.stats(i).queue_high_water > 0);
    }
}
