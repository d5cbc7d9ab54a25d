//! Run-time control through the C ABI over real socketpairs: sinks attached
//! and detached mid-stream, the input moved, whole-line drops and the drop
//! notice, and every refusal.

mod harness;
use harness::*;

fn sink_cfg(overflow: cmx_overflow, open: bool) -> cmx_sink_config {
    sink(overflow, open, false)
}

fn lines_notice() -> cmx_sink_config {
    cmx_sink_config {
        drop_unit: cmx_drop_unit::Lines as u32,
        drop_notice: true,
        ..drop_sink()
    }
}

/// A viewer attached mid-stream gets the replay history and then every byte
/// once; a viewer detached mid-stream writes out what it had queued before
/// it is released; the log never notices either.
#[test]
fn viewers_attached_and_detached_mid_stream_lose_and_repeat_nothing() {
    let (replay, len) = (4096, 1 << 20);
    let cfg = Cfg::new(&[block(), block()]).queue(16384).replay(replay);
    let mut rig = Rig::new(&cfg);
    let data = stream(len);
    let (a, b) = (len / 3, 2 * len / 3);

    rig.pump_all(&data[..a]);
    // A second viewer, open at once: replay first, then live output.
    let v2 = rig.attach_new(&block(), false).unwrap();
    assert_eq!(v2, 2);
    rig.pump_all(&data[a..b]);

    // The first viewer stops reading, so that it has a backlog when it is
    // detached: that backlog is still written to it, and then it is gone.
    rig.pause(1, true);
    let stalled = rig.pump(&data[b..], std::time::Duration::from_millis(50));
    let at = b + stalled;
    assert!(
        rig.blocked,
        "the stalled block viewer did not hold the writer"
    );
    let backlog = rig.mux.detach(1).unwrap();
    assert!(backlog > 0);
    assert_eq!(rig.mux.stats(1).state, DETACHING);
    // Detaching it freed the writer.
    assert!(rig.mux.ctx.woken > 0);
    rig.pause(1, false);
    rig.drain();
    let last = rig.mux.release(1).unwrap();
    assert_eq!((last.queued, last.dropped), (0, 0), "{last:?}");
    assert_eq!(last.delivered, at as u64);
    assert_bytes_eq("detached viewer", rig.received(1), &data[..at]);
    assert!(
        rig.mux.try_stats(1).is_none(),
        "a released index is refused"
    );

    rig.pump_all(&data[at..]);
    rig.drain();
    assert_bytes_eq("log", rig.received(0), &data);
    assert_bytes_eq("attached viewer", rig.received(2), &data[a - replay..]);
    let st = rig.mux.stats(2);
    assert_eq!((st.replayed, st.dropped), (replay as u64, 0), "{st:?}");
    assert_balanced("attached viewer", &st);

    // The released index is used again, with fresh counters.
    let v3 = rig.attach_new(&drop_sink(), false).unwrap();
    assert_eq!(v3, 1);
    let reused = rig.mux.stats(1);
    assert_eq!(
        (reused.offered, reused.replayed),
        (replay as u64, replay as u64)
    );
    rig.drain();
    assert_bytes_eq("reused index", rig.received(1), &data[len - replay..]);
}

/// A sink attached closed gets nothing until it opens, then the replay; one
/// that is released while closed takes nothing with it.
#[test]
fn a_closed_viewer_attached_later_opens_with_the_replay() {
    let cfg = Cfg::new(&[block(), block()]).replay(100);
    let mut rig = Rig::new(&cfg);
    let data = stream(1000);
    rig.pump_all(&data[..500]);
    let v = rig
        .attach_new(&sink_cfg(cmx_overflow::Drop, false), false)
        .unwrap();
    rig.pump_all(&data[500..700]);
    rig.drain();
    assert_eq!(rig.received(v), b"");
    assert_eq!(rig.mux.event(v, cmx_sink_event::Opened), cmx_result::Ok);
    rig.pump_all(&data[700..]);
    rig.drain();
    assert_bytes_eq("late viewer", rig.received(v), &data[600..]);
    let last = rig.mux.release(v).unwrap();
    assert_eq!(last.offered, 400);
}

/// The input moves between viewers: the old one's input is discarded and
/// counted, the frontend gets no CLOSED/OPENED, and none means none.
#[test]
fn the_input_moves_without_telling_the_frontend_anything() {
    let cfg = Cfg::new(&[block(), sink(cmx_overflow::Drop, true, true)]);
    let mut rig = Rig::new(&cfg);
    let v2 = rig.attach_new(&drop_sink(), false).unwrap();
    let events = rig.mux.ctx.events.clone();
    assert_eq!(events, [cmx_frontend_event::Opened]);

    assert_eq!(rig.mux.input(1, b"ls\n", 64), 3);
    assert_eq!(rig.mux.set_input(Some(v2)), cmx_result::Ok);
    assert_eq!(rig.mux.input(1, b"old", 64), 0);
    assert_eq!(rig.mux.input(v2, b"new", 64), 3);
    assert_eq!(rig.mux.ctx.guest, b"ls\nnew");
    assert_eq!(rig.mux.stats(1).input_discarded, 3);
    assert_eq!(rig.mux.stats(v2).input_forwarded, 3);

    assert_eq!(rig.mux.set_input(None), cmx_result::Ok);
    assert_eq!(rig.mux.input(v2, b"x", 64), 0);
    assert_eq!(rig.mux.ctx.events, events, "the frontend saw an event");

    // Detaching the input leaves none; a sink being detached cannot take it.
    assert_eq!(rig.mux.set_input(Some(1)), cmx_result::Ok);
    rig.mux.detach(1).unwrap();
    assert_eq!(rig.mux.input(1, b"gone", 64), 0);
    assert_eq!(rig.mux.set_input(Some(1)), cmx_result::InvalidSink);
    assert_eq!(rig.mux.set_input(Some(7)), cmx_result::InvalidSink);
}

/// Lines of the stream that a viewer received, notices taken out; panics
/// unless every one is a whole line of `data`, in order.
fn whole_lines(got: &[u8], data: &[u8]) -> usize {
    let text = String::from_utf8(got.to_vec()).unwrap();
    let mut prev: Option<u32> = None;
    let mut n = 0;
    for line in text.split_inclusive('\n') {
        assert!(line.ends_with('\n'), "unfinished line {line:?}");
        assert_eq!(line.len(), 9, "not a whole line: {line:?}");
        let k = u32::from_str_radix(&line[..8], 16).unwrap();
        assert!(prev.is_none_or(|p| k > p), "line {k:08x} after {prev:?}");
        let at = k as usize * 9;
        assert_eq!(line.as_bytes(), &data[at..at + 9]);
        prev = Some(k);
        n += 1;
    }
    n
}

/// A stalled lines-mode viewer on a real socket loses only whole lines, and
/// once it reads again gets one notice with the exact count; the log gets
/// every byte.
#[test]
fn a_stalled_lines_viewer_gets_whole_lines_and_one_notice() {
    let len = 9 * 40_000;
    let cfg = Cfg::new(&[block(), lines_notice()]).queue(4096);
    let mut rig = Rig::with_tiny_buffers(&cfg);
    rig.chunks = Chunks::random(700);
    let data = stream(len);
    rig.pump_all(&data[..9000]);
    rig.pause(1, true);
    rig.pump_all(&data[9000..len - 9000]);
    let st = rig.mux.stats(1);
    assert!(st.dropped > 0 && st.drop_episodes == 1, "{st:?}");
    rig.pause(1, false);
    rig.drain();
    rig.pump_all(&data[len - 9000..]);
    rig.drain();

    assert_bytes_eq("log", rig.received(0), &data);
    let viewer = rig.mux.stats(1);
    assert_balanced("viewer", &viewer);
    assert_eq!((viewer.notices, viewer.drop_episodes), (1, 1), "{viewer:?}");
    let notice = format!("\r\n[multiplex: {} bytes dropped]\r\n", viewer.dropped);
    assert_eq!(viewer.notice_bytes, notice.len() as u64);
    let got = rig.received(1);
    let at = got
        .windows(notice.len())
        .position(|w| w == notice.as_bytes())
        .expect("no notice");
    let mut rest = got[..at].to_vec();
    rest.extend_from_slice(&got[at + notice.len()..]);
    let lines = whole_lines(&rest, &data);
    assert_eq!((lines * 9) as u64, viewer.delivered);
    assert_eq!(viewer.delivered + viewer.dropped, len as u64);
    // The last 9000 bytes came after it caught up: all there, in one piece.
    assert!(rest.ends_with(&data[len - 9000..]));
}

/// The same stall with bytes as the unit cuts lines: the mode is what keeps
/// them whole (this is what the lines test would see without it).
#[test]
fn a_stalled_bytes_viewer_cuts_lines() {
    let len = 9 * 40_000;
    let cfg = Cfg::new(&[block(), drop_sink()]).queue(4096);
    let mut rig = Rig::with_tiny_buffers(&cfg);
    rig.chunks = Chunks::random(700);
    let data = stream(len);
    rig.pause(1, true);
    rig.pump_all(&data);
    rig.pause(1, false);
    rig.drain();
    let got = rig.received(1);
    let cut = got
        .split(|&b| b == b'\n')
        .any(|l| !l.is_empty() && l.len() != 8);
    assert!(cut, "bytes mode kept every line whole by chance");
    assert_eq!(rig.mux.stats(1).notices, 0);
}

#[test]
fn attach_and_detach_refuse_what_they_cannot_do() {
    let cfg = Cfg::new(&[block(), drop_sink()]);
    let mut rig = Rig::new(&cfg);
    let bad_unit = cmx_sink_config {
        drop_unit: 9,
        ..drop_sink()
    };
    let notice_on_block = cmx_sink_config {
        drop_notice: true,
        ..block()
    };
    let bad_overflow = cmx_sink_config {
        overflow: 5,
        ..block()
    };
    assert_eq!(
        rig.attach_new(&bad_unit, false),
        Err(cmx_result::ConfigUnknownDropUnit)
    );
    assert_eq!(
        rig.attach_new(&notice_on_block, false),
        Err(cmx_result::ConfigNoticeOnBlockSink)
    );
    assert_eq!(
        rig.attach_new(&bad_overflow, false),
        Err(cmx_result::ConfigUnknownOverflow)
    );
    // NULL arguments.
    let mut out = 0usize;
    // SAFETY: a live multiplexer and deliberately NULL pointers.
    unsafe {
        assert_eq!(
            cmx_mux_attach(rig.mux.raw, std::ptr::null(), &mut out),
            cmx_result::NullParameter
        );
        assert_eq!(
            cmx_mux_attach(rig.mux.raw, &block(), std::ptr::null_mut()),
            cmx_result::NullParameter
        );
        assert_eq!(
            cmx_mux_detach(std::ptr::null_mut(), 0, &mut out),
            cmx_result::NullParameter
        );
    }
    for k in 2..CMX_MAX_SINKS {
        assert_eq!(rig.attach_new(&drop_sink(), false), Ok(k));
    }
    assert_eq!(
        rig.attach_new(&drop_sink(), false),
        Err(cmx_result::SinkLimit)
    );
    assert_eq!(rig.mux.detach(CMX_MAX_SINKS), Err(cmx_result::InvalidSink));
    for k in 1..CMX_MAX_SINKS {
        rig.mux.release(k).unwrap();
    }
    assert_eq!(rig.mux.detach(0), Err(cmx_result::LastSink));
    assert_eq!(rig.mux.release(0).err(), Some(cmx_result::LastSink));
    assert_eq!(rig.mux.release(3).err(), Some(cmx_result::InvalidSink));
    // Still works.
    let data = stream(5000);
    rig.pump_all(&data);
    rig.drain();
    assert_bytes_eq("log", rig.received(0), &data);
}

/// A released index is no sink: every call that names it is refused with
/// `CMX_RESULT_INVALID_SINK`, `cmx_mux_transmitted()` included (issue 17,
/// item 3: it used to say OK while `cmx_mux_sink_writable()` refused).
#[test]
fn every_call_refuses_a_released_index() {
    let cfg = Cfg::new(&[block(), drop_sink()]);
    let mut rig = Rig::new(&cfg);
    rig.pump_all(b"hello\n");
    rig.mux.release(1).unwrap();
    let m = &rig.mux;
    let (mut size, mut st) = (7usize, cmx_sink_stats::default());
    // SAFETY: live mux, valid out pointers (whole block).
    let results = unsafe {
        [
            ("transmitted 0", cmx_mux_transmitted(m.raw, 1, 0)),
            ("transmitted n", cmx_mux_transmitted(m.raw, 1, 3)),
            (
                "transmitted -EPIPE",
                cmx_mux_transmitted(m.raw, 1, -(libc::EPIPE as isize)),
            ),
            ("sink_writable", cmx_mux_sink_writable(m.raw, 1)),
            (
                "sink_event",
                cmx_mux_sink_event(m.raw, 1, cmx_sink_event::Opened.into()),
            ),
            ("sink_stats", cmx_mux_sink_stats(m.raw, 1, &mut st)),
            ("input_room", cmx_mux_input_room(m.raw, 1, 5, &mut size)),
            ("input", cmx_mux_input(m.raw, 1, 3, 5, &mut size)),
            ("set_input", cmx_mux_set_input(m.raw, 1)),
            ("detach", cmx_mux_detach(m.raw, 1, &mut size)),
        ]
    };
    for (what, r) in results {
        assert_eq!(r, cmx_result::InvalidSink, "{what} on a released index");
    }
    assert_eq!(rig.mux.release(1).err(), Some(cmx_result::InvalidSink));
}
