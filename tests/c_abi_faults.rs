//! Slow, stalled, vanished and late viewers, and input, through the C ABI with
//! real socketpairs: back-pressure, drops, failures, replay on reconnect.

mod harness;

use std::io::Read;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use harness::*;

const STALL: Duration = Duration::from_millis(150);

#[test]
fn stalled_block_reader_pushes_back_then_resumes_losslessly_after_wakeup() {
    let cap = 4096;
    let mut rig = Rig::new(&Cfg::new(&[block(), block()]).queue(cap));
    rig.chunks = Chunks::random(700);
    let data = stream(1 << 20);

    rig.pause(1, true);
    let accepted = rig.pump(&data, STALL);
    assert!(
        accepted < data.len(),
        "a stalled block reader did not stop the writer"
    );
    assert!(rig.would_blocks >= 1);
    assert!(rig.blocked);
    let st1 = rig.mux.stats(1);
    assert!(st1.backpressure_events > 0, "{st1:?}");
    assert_eq!(st1.queued, cap as u64, "the full queue is what pushes back");
    assert_eq!(st1.queue_high_water, cap as u64);
    assert_balanced("sink 1", &st1);
    assert!(rig.mux.ctx.watching[1]);
    assert_eq!(rig.mux.ctx.woken, 0, "woken while still stalled");
    assert_eq!(rig.mux.write_room(), 0);
    let (r, acc) = rig.mux.write(&data[accepted..]);
    assert_eq!((r, acc), (cmx_result::WouldBlock, usize::MAX));
    // The other sink is not held back: it has everything accepted so far.
    rig.drain();
    assert_bytes_eq("sink 0 while 1 stalls", rig.received(0), &data[..accepted]);
    assert_eq!(rig.mux.stats(0).backpressure_events, 0);
    assert_eq!(
        rig.mux.lossless_backlog(),
        cap,
        "what a caller about to free it would still have to write"
    );

    // The reader resumes: the loop sees POLLOUT, calls sink_writable, the
    // library queues CMX_FRONTEND_EVENT_WRITABLE, and the writer (which waits
    // for it before writing again) goes on. Nothing is lost.
    rig.pause(1, false);
    rig.pump_all(&data[accepted..]);
    assert!(rig.mux.ctx.woken >= 1, "the writer was never woken");
    rig.drain();
    assert_eq!(rig.mux.lossless_backlog(), 0);
    for i in 0..2 {
        assert_bytes_eq(&format!("sink {i}"), rig.received(i), &data);
        let st = rig.mux.stats(i);
        assert_eq!(
            (st.offered, st.delivered, st.queued, st.dropped),
            (data.len() as u64, data.len() as u64, 0, 0)
        );
    }
    assert!(!rig.mux.ctx.watching[1]);
}

/// QEMU's `qemu_chr_fe_write_all()` does not return before everything is
/// accepted: on `WOULD_BLOCK` it sleeps 100 us and writes again, and nothing
/// services the sinks' watches meanwhile. A refused write offers the full
/// sinks again, so such a writer makes progress on whatever a stalled sink
/// takes once its reader resumes, without `cmx_mux_sink_writable()`.
#[test]
fn write_all_writer_spinning_on_a_stalled_pipe_completes_once_its_reader_resumes() {
    let cap = 4096;
    let mut rig = Rig::new(&Cfg::new(&[block()]).queue(cap));
    let (rd, wr) = pipe();
    set_nonblocking(wr.as_raw_fd(), true);
    rig.attach_fd(0, wr);
    let (resume, paused) = std::sync::mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        paused.recv().unwrap();
        let mut got = Vec::new();
        std::fs::File::from(rd).read_to_end(&mut got).unwrap();
        got
    });
    let data = stream(1 << 20);
    let start = Instant::now();
    let (mut off, mut would_blocks) = (0, 0u64);
    while off < data.len() {
        assert!(start.elapsed() < deadline(), "write_all: stuck at {off}");
        let len = rig.chunks.next_len().min(data.len() - off);
        match rig.mux.write(&data[off..off + len]) {
            (cmx_result::Ok, n) => off += n,
            (cmx_result::WouldBlock, usize::MAX) => {
                would_blocks += 1;
                if would_blocks == 50 {
                    // The pipe and the queue are full: the reader resumes.
                    assert_eq!(rig.mux.stats(0).queued, cap as u64);
                    assert!(rig.mux.ctx.eagain > 0);
                    resume.send(()).unwrap();
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            r => panic!("cmx_mux_write: {r:?}"),
        }
    }
    assert!(would_blocks >= 50, "the writer never spun: {would_blocks}");
    // write_all returned; the main loop writes the rest through the watch.
    rig.flush_and_close();
    assert_bytes_eq("pipe reader", &reader.join().unwrap(), &data);
    let st = rig.mux.stats(0);
    assert_eq!(
        (st.state, st.delivered, st.dropped, st.write_errors),
        (OPEN, data.len() as u64, 0, 0)
    );
    assert!(st.backpressure_events >= 1, "{st:?}");
}

#[test]
fn stalled_drop_reader_never_slows_the_block_sink_and_counts_drops_exactly() {
    let cap = 4096;
    let mut rig = Rig::new(&Cfg::new(&[block(), drop_sink()]).queue(cap));
    // Small writes, read after each one: the block sink always keeps up, so
    // anything that turns the writer away is the drop sink's doing.
    rig.chunks = Chunks::random(512);
    let data = stream(1 << 20);

    rig.pause(1, true);
    rig.pump_all(&data);
    assert_eq!(rig.would_blocks, 0, "the writer was turned away");
    rig.drain();
    assert_bytes_eq("block sink", rig.received(0), &data);
    let st0 = rig.mux.stats(0);
    assert_eq!(
        (st0.delivered, st0.dropped, st0.backpressure_events),
        (data.len() as u64, 0, 0)
    );

    let before = rig.mux.stats(1);
    assert_balanced("drop sink while stalled", &before);
    assert_eq!(before.offered, data.len() as u64);
    assert_eq!(before.queued, cap as u64, "a stalled drop queue stays full");
    assert!(before.dropped > 0);
    assert_eq!(before.backpressure_events, 0);
    assert_eq!(
        before.dropped,
        before.offered - before.delivered - before.queued,
        "{before:?}"
    );

    rig.pause(1, false);
    rig.drain();
    let after = rig.mux.stats(1);
    assert_balanced("drop sink after", &after);
    assert_eq!(
        after.dropped, before.dropped,
        "nothing more lost once it reads"
    );
    assert_eq!(after.queued, 0);
    let got = rig.received(1);
    assert_eq!(got.len() as u64, after.delivered);
    assert_eq!(after.dropped, data.len() as u64 - got.len() as u64);
    let segs = assert_segments_of("drop sink", got, &data);
    assert!(segs.len() >= 2, "expected a gap: {segs:?}");
    assert_eq!(segs[0].0, 0, "it starts at the beginning");
    // What it received after resuming is the newest part of the stream: the
    // queue's content, which ends at the end of the stream.
    let q = before.queued as usize;
    assert_bytes_eq(
        "drop sink tail",
        &got[got.len() - q..],
        &data[data.len() - q..],
    );
    assert_eq!(segs.last().unwrap().1, data.len());
}

#[test]
fn reader_hanging_up_fails_its_sink_with_epipe_and_others_get_everything() {
    let mut rig = Rig::new(&Cfg::new(&[block(), block(), drop_sink()]));
    let data = stream(600_000);
    let (a, b) = (200_000, 400_000);
    rig.pump_all(&data[..a]);
    rig.drain();
    let got1 = rig.hang_up(1);
    assert_bytes_eq("sink 1 before hanging up", &got1, &data[..a]);

    rig.pump_all(&data[a..b]);
    rig.drain();
    let st = rig.mux.stats(1);
    assert_eq!(st.state, FAILED, "{st:?}");
    assert_eq!(st.last_errno, libc::EPIPE);
    assert_eq!(st.write_errors, 1);
    assert_eq!(st.delivered, a as u64);
    assert_eq!(st.queued, 0);
    assert_balanced("failed sink", &st);
    assert_eq!(rig.mux.ctx.write_errors, [(1, libc::EPIPE)]);
    assert!(!rig.mux.ctx.watching[1]);
    for i in [0, 2] {
        assert_bytes_eq(&format!("sink {i}"), rig.received(i), &data[..b]);
        assert_eq!(rig.mux.stats(i).state, OPEN);
    }
    assert!(rig.mux.frontend_open(), "a failed sink is still connected");

    // A new viewer connects: the sink is open again and gets live output.
    rig.close_ours(1);
    rig.attach(1);
    assert_eq!(rig.mux.event(1, cmx_sink_event::Opened), cmx_result::Ok);
    rig.pump_all(&data[b..]);
    rig.drain();
    assert_bytes_eq("sink 1 after reconnecting", rig.received(1), &data[b..]);
    let again = rig.mux.stats(1);
    assert_eq!((again.state, again.write_errors), (OPEN, 1));
    for i in [0, 2] {
        assert_bytes_eq(&format!("sink {i}"), rig.received(i), &data);
    }
}

#[test]
fn stalled_block_reader_hanging_up_unblocks_the_writer() {
    let cap = 8192;
    let mut rig = Rig::new(&Cfg::new(&[block(), block()]).queue(cap));
    let data = stream(1 << 20);
    rig.pause(1, true);
    let accepted = rig.pump(&data, STALL);
    assert!(accepted < data.len());
    let before = rig.mux.stats(1);
    assert_eq!(before.queued, cap as u64);

    // The viewer goes away with data queued for it: POLLOUT/POLLHUP, the
    // write fails with EPIPE, the queue is dropped, the writer is woken.
    rig.hang_up(1);
    rig.pump_all(&data[accepted..]);
    assert!(rig.mux.ctx.woken >= 1);
    rig.drain();
    assert_bytes_eq("sink 0", rig.received(0), &data);
    let st = rig.mux.stats(1);
    assert_eq!(
        (st.state, st.last_errno, st.write_errors),
        (FAILED, libc::EPIPE, 1)
    );
    assert_eq!(st.dropped, st.offered - st.delivered);
    assert!(st.dropped >= cap as u64, "the queue was dropped: {st:?}");
    assert_balanced("failed sink", &st);
}

#[test]
fn replay_to_a_sink_that_starts_closed_gives_recent_then_live_output() {
    let r = 10_000;
    let cfg = Cfg::new(&[block(), sink(cmx_overflow::Block, false, false)]).replay(r);
    let mut rig = Rig::new(&cfg);
    assert!(rig.peers[1].is_none());
    let data = stream(300_000);
    let a = 100_000;
    rig.pump_all(&data[..a]);
    rig.drain();
    let st = rig.mux.stats(1);
    assert_eq!(
        (st.state, st.offered),
        (CLOSED, 0),
        "a closed sink is offered nothing"
    );

    rig.attach(1);
    assert_eq!(rig.mux.event(1, cmx_sink_event::Opened), cmx_result::Ok);
    rig.pump_all(&data[a..]);
    rig.drain();
    assert_bytes_eq("late viewer", rig.received(1), &data[a - r..]);
    assert_bytes_eq("sink 0", rig.received(0), &data);
    let replayed = rig.mux.stats(1);
    assert_eq!(replayed.replayed, r as u64);
    assert_eq!(replayed.offered, (data.len() - a + r) as u64);
    assert_eq!(replayed.delivered, replayed.offered);
    assert_balanced("late viewer", &replayed);
    // Only the first sink to open tells the frontend.
    assert_eq!(rig.mux.ctx.events, [cmx_frontend_event::Opened]);
}

#[test]
fn replay_after_close_and_reconnect_has_no_gap_and_no_repeat() {
    let r = 3000;
    let cfg = Cfg::new(&[block(), drop_sink()]).queue(8192).replay(r);
    let mut rig = Rig::new(&cfg);
    let data = stream(50_000);
    let (a, b) = (20_000, 27_000);

    rig.pump_all(&data[..a]);
    rig.drain();
    let old = rig.hang_up(1);
    rig.close_ours(1);
    assert_eq!(rig.mux.event(1, cmx_sink_event::Closed), cmx_result::Ok);
    assert_bytes_eq("first connection", &old, &data[..a]);
    let closed = rig.mux.stats(1);
    assert_eq!(closed.state, CLOSED);

    // Output while nobody watches: sink 1 is offered none of it.
    rig.pump_all(&data[a..b]);
    rig.drain();
    assert_eq!(rig.mux.stats(1).offered, closed.offered);

    rig.attach(1);
    assert_eq!(rig.mux.event(1, cmx_sink_event::Opened), cmx_result::Ok);
    rig.pump_all(&data[b..]);
    rig.drain();
    // The last R bytes before it connected, then live output, contiguous.
    assert_bytes_eq("second connection", rig.received(1), &data[b - r..]);
    let st = rig.mux.stats(1);
    assert_eq!(st.replayed, r as u64);
    assert_eq!(st.offered, (a + r + data.len() - b) as u64);
    assert_eq!(st.dropped, 0);
    assert_balanced("reconnected", &st);
    assert_bytes_eq("sink 0", rig.received(0), &data);

    // A short history is replayed whole.
    let short = Cfg::new(&[block(), sink(cmx_overflow::Block, false, false)]).replay(r);
    let mut rig2 = Rig::new(&short);
    rig2.pump_all(&data[..100]);
    rig2.attach(1);
    assert_eq!(rig2.mux.event(1, cmx_sink_event::Opened), cmx_result::Ok);
    rig2.pump_all(&data[100..200]);
    rig2.drain();
    assert_bytes_eq("short history", rig2.received(1), &data[..200]);
    assert_eq!(rig2.mux.stats(1).replayed, 100);
}

#[test]
fn closing_the_last_sink_tells_the_frontend_and_reopening_tells_it_again() {
    let mut rig = Rig::new(&Cfg::new(&[block(), drop_sink()]));
    assert!(rig.mux.frontend_open());
    for i in 0..2 {
        rig.hang_up(i);
        rig.close_ours(i);
        assert_eq!(rig.mux.event(i, cmx_sink_event::Closed), cmx_result::Ok);
    }
    assert!(!rig.mux.frontend_open());
    // With no open sink, output goes nowhere but is accepted.
    assert_eq!(rig.mux.write(b"into the void"), (cmx_result::Ok, 13));
    assert_eq!(rig.mux.write_room(), usize::MAX);
    rig.attach(0);
    assert_eq!(rig.mux.event(0, cmx_sink_event::Opened), cmx_result::Ok);
    assert_eq!(
        rig.mux.ctx.events,
        [
            cmx_frontend_event::Opened,
            cmx_frontend_event::Closed,
            cmx_frontend_event::Opened
        ]
    );
}

/// Reads what the guest typed from our end of `sink`'s socketpair.
fn read_some(rig: &Rig, sink: usize, max: usize) -> Vec<u8> {
    let fd = std::os::fd::AsRawFd::as_raw_fd(rig.ours[sink].as_ref().unwrap());
    let mut buf = vec![0u8; max];
    // SAFETY: `buf` is valid for `max` bytes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), max) };
    if n < 0 {
        assert_eq!(errno(), libc::EAGAIN);
        return Vec::new();
    }
    buf.truncate(n as usize);
    buf
}

#[test]
fn input_reaches_the_frontend_within_its_room_and_other_sinks_input_is_discarded() {
    let cfg = Cfg::new(&[block(), sink(cmx_overflow::Block, true, true)]);
    let mut rig = Rig::new(&cfg);
    let typed = stream(10_000);
    let noise = stream(5_000);
    let peer_fd = |r: &Rig, i| std::os::fd::AsRawFd::as_raw_fd(&r.peer(i).fd);
    write_all(peer_fd(&rig, 1), &typed);
    write_all(peer_fd(&rig, 0), &noise);

    // The input source: the guest's room varies from 0 to 9 bytes; the loop
    // reads what cmx_mux_input_room says, and sometimes more than that (the
    // library then forwards only the room and the caller keeps the rest).
    let mut pending: Vec<u8> = Vec::new();
    let mut round = 0usize;
    let start = std::time::Instant::now();
    while rig.mux.ctx.guest.len() < typed.len() {
        assert!(start.elapsed() < deadline(), "input stalled");
        let frontend_room = round % 10;
        round += 1;
        let room = rig.mux.input_room(1, frontend_room);
        assert_eq!(
            room, frontend_room,
            "the input source reads what the frontend takes"
        );
        if pending.is_empty() {
            let extra = if round % 3 == 0 { 5 } else { 0 };
            pending = read_some(&rig, 1, room + extra);
        }
        let forwarded = rig.mux.input(1, &pending, frontend_room);
        assert_eq!(forwarded, pending.len().min(frontend_room));
        pending.drain(..forwarded);
    }
    assert_bytes_eq("guest input", &rig.mux.ctx.guest, &typed);
    assert!(rig
        .mux
        .ctx
        .input_calls
        .iter()
        .all(|&n| (1..=9).contains(&n)));
    let st1 = rig.mux.stats(1);
    assert_eq!(
        (st1.input_forwarded, st1.input_discarded),
        (typed.len() as u64, 0)
    );

    // Another sink: whatever it sends is read in fixed chunks and discarded.
    let room0 = rig.mux.input_room(0, 7);
    assert!(room0 > 0);
    let mut discarded = 0;
    while discarded < noise.len() {
        assert!(start.elapsed() < deadline(), "discarding stalled");
        let got = read_some(&rig, 0, room0);
        assert!(got.len() <= room0);
        assert_eq!(rig.mux.input(0, &got, 7), 0, "none of it is forwarded");
        discarded += got.len();
    }
    let st0 = rig.mux.stats(0);
    assert_eq!(
        (st0.input_forwarded, st0.input_discarded),
        (0, noise.len() as u64)
    );
    assert_eq!(
        rig.mux.ctx.guest.len(),
        typed.len(),
        "noise reached the guest"
    );

    // Breaks: only from the input source.
    rig.mux.ctx.events.clear();
    assert_eq!(rig.mux.event(0, cmx_sink_event::Break), cmx_result::Ok);
    assert!(rig.mux.ctx.events.is_empty());
    assert_eq!(rig.mux.event(1, cmx_sink_event::Break), cmx_result::Ok);
    assert_eq!(rig.mux.ctx.events, [cmx_frontend_event::Break]);
}

/// `cmx_mux_poll_transmit()` by hand: the next bytes handed out, copied.
fn next_transmit(rig: &Rig) -> (usize, Vec<u8>) {
    let mut t = cmx_transmit {
        sink: usize::MAX,
        data: std::ptr::null(),
        len: 0,
    };
    // SAFETY: live mux, writable out.
    let r = unsafe { cmx_mux_poll_transmit(rig.mux.raw, &mut t) };
    assert_eq!(r, cmx_result::Ok);
    if t.len == 0 {
        return (usize::MAX, Vec::new());
    }
    // SAFETY: `len` readable bytes until the next call on the multiplexer.
    (
        t.sink,
        unsafe { std::slice::from_raw_parts(t.data, t.len) }.to_vec(),
    )
}

/// Issue 17, item 9d: a socket viewer hangs up inside the caller's write,
/// so the write fails with EPIPE and the backend delivers CLOSED at once:
/// `cmx_mux_sink_event(k, CLOSED)` arrives between `cmx_mux_poll_transmit()`
/// and `cmx_mux_transmitted()` for the same bytes. That report is accepted
/// (OK) and ignored: the sink is closed, not failed, and its queue is
/// discarded and counted. A viewer that connects again inside the same
/// write (OPENED right after CLOSED) does not inherit the failed write. A
/// second report for the same bytes is refused: they were reported.
#[test]
fn a_viewer_hanging_up_inside_the_write_is_closed_not_failed() {
    for reconnect in [true, false] {
        let mut rig = Rig::new(&Cfg::new(&[block(), drop_sink()]));
        let data = stream(3000);
        rig.pump_all(&data[..1000]);
        rig.drain();
        // Queue more, and write it out by hand: sink 0 first, then sink 1.
        let mut acc = 0;
        // SAFETY: live mux, valid buffers.
        let r = unsafe { cmx_mux_write(rig.mux.raw, data[1000..].as_ptr(), 1000, &mut acc) };
        assert_eq!((r, acc), (cmx_result::Ok, 1000));
        let (sink, bytes) = next_transmit(&rig);
        assert_eq!(sink, 0);
        let n = sink_write(&mut rig.mux.ctx, 0, &bytes);
        // SAFETY: live mux.
        let reported = unsafe { cmx_mux_transmitted(rig.mux.raw, 0, n) };
        assert_eq!(reported, cmx_result::Ok);
        let (other, out) = next_transmit(&rig);
        assert_eq!((other, out.len()), (1, 1000));
        // Sink 1's bytes are out: its viewer hangs up, the write fails ...
        let got = rig.hang_up(1);
        let failed_write = sink_write(&mut rig.mux.ctx, 1, &out);
        assert_eq!(failed_write, -(libc::EPIPE as isize));
        // ... and the backend reports CLOSED from inside that write.
        // SAFETY: live mux (whole block).
        unsafe {
            assert_eq!(
                cmx_mux_sink_event(rig.mux.raw, 1, cmx_sink_event::Closed.into()),
                cmx_result::Ok
            );
            if reconnect {
                rig.close_ours(1);
                rig.attach(1);
                assert_eq!(
                    cmx_mux_sink_event(rig.mux.raw, 1, cmx_sink_event::Opened.into()),
                    cmx_result::Ok
                );
            }
            assert_eq!(
                cmx_mux_transmitted(rig.mux.raw, 1, failed_write),
                cmx_result::Ok,
                "the report after the close (reconnect {reconnect})"
            );
            assert_eq!(
                cmx_mux_transmitted(rig.mux.raw, 1, failed_write),
                cmx_result::NotOffered,
                "a second report (reconnect {reconnect})"
            );
        }
        rig.mux.settle();
        let st = rig.mux.stats(1);
        assert_eq!(
            (st.state, st.write_errors, st.last_errno),
            (if reconnect { OPEN } else { CLOSED }, 0, 0),
            "closed, not failed: {st:?}"
        );
        assert_eq!((st.delivered, st.dropped), (1000, 1000), "{st:?}");
        let failed = rig
            .mux
            .ctx
            .reports
            .iter()
            .any(|rep| rep.sink == 1 && rep.kind == cmx_sink_report_kind::Failed as u32);
        assert!(
            !failed,
            "a hang-up reported as a failure: {:?}",
            rig.mux.ctx.reports
        );
        assert_balanced("sink 1", &st);
        assert_bytes_eq("sink 1 before it hung up", &got, &data[..1000]);
        rig.pump_all(&data[2000..]);
        rig.drain();
        assert_bytes_eq("log", rig.received(0), &data);
        if reconnect {
            assert_bytes_eq("new viewer", rig.received(1), &data[2000..]);
        }
    }
}
