//! Line stamps, one behaviour each (issue 18, item 1). The stamp text
//! itself is checked against a naive calendar in `stamp.rs`.

use super::{new_mux, Pumped};
use crate::engine::model::{Behaviour, ScriptIo};
use crate::engine::*;

/// 2026-12-06T18:11:04.783070Z, and later times a second and a bit apart.
const T0: u64 = 1_796_580_664_783_070_000;
fn t(k: u64) -> u64 {
    T0 + k * 1_234_567_891
}

fn stamp(wall_ns: u64) -> Vec<u8> {
    format_stamp(wall_ns).to_vec()
}

/// `parts` joined: each `(Some(t), bytes)` is a stamp of `t` then the bytes.
fn stamped(parts: &[(Option<u64>, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (t, b) in parts {
        if let Some(t) = t {
            out.extend(stamp(*t));
        }
        out.extend_from_slice(b);
    }
    out
}

fn sink(overflow: Overflow, unit: DropUnit, timestamp: bool) -> SinkConfig {
    SinkConfig {
        drop_unit: unit,
        timestamp,
        ..SinkConfig::new(overflow, true)
    }
}

fn mux(sinks: Vec<SinkConfig>, cap: usize, replay: usize) -> (Mux, ScriptIo) {
    let mut io = ScriptIo::new(MAX_SINKS);
    let config = Config {
        sinks,
        input: None,
        queue_capacity: cap,
        replay_capacity: replay,
        replay_head_capacity: 0,
        coalesce_ns: 0,
    };
    let m = new_mux(config, &mut io);
    (m, io)
}

#[test]
fn every_line_starts_with_the_time_of_its_first_byte_and_other_sinks_see_the_bytes() {
    let (mut m, mut io) = mux(
        vec![
            sink(Overflow::Block, DropUnit::Lines, true),
            sink(Overflow::Block, DropUnit::Lines, false),
            sink(Overflow::Drop, DropUnit::Lines, true),
        ],
        64,
        0,
    );
    m.write_wall_p(&mut io, b"ab\ncd", t(0)).unwrap();
    // "cd" goes on: its line started at t(0). "\r\n" ends it: the stamp
    // follows the "\n".
    m.write_wall_p(&mut io, b"e\r\nf\n", t(1)).unwrap();
    m.write_wall_p(&mut io, b"\n", t(2)).unwrap();
    let raw = b"ab\ncde\r\nf\n\n";
    let want = stamped(&[
        (Some(t(0)), b"ab\n"),
        (Some(t(0)), b"cde\r\n"),
        (Some(t(1)), b"f\n"),
        (Some(t(2)), b"\n"),
    ]);
    assert_eq!(io.received[0], want);
    assert_eq!(io.received[2], want);
    assert_eq!(
        io.received[1], raw,
        "an unstamped sink gets the bytes as they are"
    );
    for i in [0, 2] {
        let st = m.stats(i).unwrap();
        // The frontend's bytes are counted as such; stamps apart.
        assert_eq!(
            (st.offered, st.delivered, st.queued, st.dropped),
            (raw.len() as u64, raw.len() as u64, 0, 0)
        );
        assert_eq!((st.stamps, st.stamp_bytes), (4, 4 * 28));
    }
    let st = m.stats(1).unwrap();
    assert_eq!((st.stamps, st.stamp_bytes), (0, 0));
}

#[test]
fn the_stamp_is_the_frontends_wall_clock_in_qemus_format() {
    let (mut m, mut io) = mux(vec![sink(Overflow::Block, DropUnit::Lines, true)], 64, 0);
    m.write_wall_p(&mut io, b"boot\n", 1_796_580_664_783_070_999)
        .unwrap();
    assert_eq!(io.received[0], b"2026-12-06T18:11:04.783070Z boot\n");
    // Without a wall clock the time is unknown, and the stamp says so.
    m.write_p(&mut io, b"x\n").unwrap();
    m.write_at_p(&mut io, b"y\n", 5).unwrap();
    assert_eq!(
        &io.received[0][33..],
        b"????-??-??T??:??:??.??????Z x\n????-??-??T??:??:??.??????Z y\n"
    );
}

#[test]
fn a_sink_that_opens_in_the_middle_of_a_line_gets_that_lines_stamp() {
    let mut closed = sink(Overflow::Block, DropUnit::Lines, true);
    closed.open = false;
    let (mut m, mut io) = mux(
        vec![sink(Overflow::Block, DropUnit::Lines, false), closed],
        64,
        0,
    );
    m.write_wall_p(&mut io, b"hel", t(0)).unwrap();
    m.sink_event_p(&mut io, 1, SinkEvent::Opened).unwrap();
    m.write_wall_p(&mut io, b"lo\nworld", t(1)).unwrap();
    assert_eq!(
        io.received[1],
        stamped(&[(Some(t(0)), b"lo\n"), (Some(t(1)), b"world")])
    );
    // One attached in the middle of a line, too.
    let late = driven_attach(
        &mut m,
        &mut io,
        sink(Overflow::Block, DropUnit::Lines, true),
    );
    m.write_wall_p(&mut io, b"!\n", t(2)).unwrap();
    assert_eq!(io.received[late], stamped(&[(Some(t(1)), b"!\n")]));
}

fn driven_attach(m: &mut Mux, io: &mut ScriptIo, config: SinkConfig) -> usize {
    crate::engine::model::driven(m, io, |m| m.attach(config)).unwrap()
}

#[test]
fn a_line_longer_than_the_queue_gets_one_stamp_of_its_start() {
    // Lines mode falls back to bytes for one line longer than the queue:
    // the viewer gets what is left of it, after one stamp of its time.
    for unit in [DropUnit::Lines, DropUnit::Bytes] {
        let (mut m, mut io) = mux(vec![sink(Overflow::Drop, unit, true)], 8, 0);
        io.behaviour[0] = Behaviour::Stalled;
        m.write_wall_p(&mut io, b"0123", t(0)).unwrap();
        // (One write takes at most the queue's size.)
        for part in [b"4567", b"89ab", b"cdef"] {
            assert_eq!(m.write_wall_p(&mut io, part, t(1)), Ok(4));
        }
        io.behaviour[0] = Behaviour::Open;
        m.sink_writable_p(&mut io, 0).unwrap();
        assert_eq!(
            io.received[0],
            stamped(&[(Some(t(0)), b"89abcdef")]),
            "{unit:?}"
        );
        m.write_wall_p(&mut io, b"g\nh", t(2)).unwrap();
        assert_eq!(
            &io.received[0][28 + 8..],
            stamped(&[(None, b"g\n"), (Some(t(2)), b"h")]),
            "{unit:?}: the rest of the line is not stamped again"
        );
        let st = m.stats(0).unwrap();
        assert_eq!((st.dropped, st.stamps), (8, 2), "{unit:?}");
        assert_eq!(st.offered, st.delivered + st.queued + st.dropped);
    }
}

#[test]
fn bytes_mode_cutting_the_start_of_a_line_stamps_the_rest_with_its_time() {
    let (mut m, mut io) = mux(vec![sink(Overflow::Drop, DropUnit::Bytes, true)], 8, 0);
    io.behaviour[0] = Behaviour::Stalled;
    m.write_wall_p(&mut io, b"xx\nyyy", t(0)).unwrap();
    m.write_wall_p(&mut io, b"zzzzz", t(1)).unwrap();
    // Kept: "yyyzzzzz", whose line started at t(0) (with "yyy").
    io.behaviour[0] = Behaviour::Open;
    m.sink_writable_p(&mut io, 0).unwrap();
    assert_eq!(io.received[0], stamped(&[(Some(t(0)), b"yyyzzzzz")]));

    // A sink that took the stamp and the start of a line, then stalled:
    // the middle of the line is dropped, the rest comes without a second
    // stamp; the next line gets its own.
    io.received[0].clear();
    io.behaviour[0] = Behaviour::Budget(28 + 2);
    m.write_wall_p(&mut io, b"\nabcdef", t(2)).unwrap();
    assert_eq!(
        io.received[0],
        stamped(&[(None, b"\n"), (Some(t(2)), b"a")])
    );
    // Queued "bcdef", then "gh\nij": "bc" goes.
    m.write_wall_p(&mut io, b"gh\nij", t(3)).unwrap();
    io.behaviour[0] = Behaviour::Open;
    m.sink_writable_p(&mut io, 0).unwrap();
    assert_eq!(
        io.received[0],
        stamped(&[
            (None, b"\n"),
            (Some(t(2)), b"a"),
            (None, b"defgh\n"),
            (Some(t(3)), b"ij")
        ])
    );
}

#[test]
fn lines_mode_keeps_the_line_whose_stamp_is_out() {
    // The viewer took a stamp and nothing of its line: that line is kept
    // whole (a stamp is never left without its line), older ones go.
    let (mut m, mut io) = mux(vec![sink(Overflow::Drop, DropUnit::Lines, true)], 8, 0);
    io.behaviour[0] = Behaviour::Budget(28);
    m.write_wall_p(&mut io, b"ab\n", t(0)).unwrap();
    assert_eq!(io.received[0], stamp(t(0)));
    m.write_wall_p(&mut io, b"cd\nef\n", t(1)).unwrap();
    m.write_wall_p(&mut io, b"gh\n", t(2)).unwrap();
    io.behaviour[0] = Behaviour::Open;
    m.sink_writable_p(&mut io, 0).unwrap();
    assert_eq!(
        io.received[0],
        stamped(&[(Some(t(0)), b"ab\n"), (Some(t(2)), b"gh\n")])
    );
    assert_eq!(m.stats(0).unwrap().dropped, 6);
}

#[test]
fn replay_carries_the_stamps_for_stamped_sinks_only() {
    let (mut m, mut io) = mux(vec![sink(Overflow::Block, DropUnit::Lines, false)], 64, 8);
    m.write_wall_p(&mut io, b"one\ntwo", t(0)).unwrap();
    m.write_wall_p(&mut io, b"\nthree", t(1)).unwrap();
    // The tail: "wo\nthree" (8 bytes), from the middle of "two\n".
    let a = driven_attach(
        &mut m,
        &mut io,
        sink(Overflow::Block, DropUnit::Lines, true),
    );
    let b = driven_attach(
        &mut m,
        &mut io,
        sink(Overflow::Block, DropUnit::Lines, false),
    );
    assert_eq!(
        io.received[a],
        stamped(&[(Some(t(0)), b"wo\n"), (Some(t(1)), b"three")])
    );
    assert_eq!(io.received[b], b"wo\nthree");
    m.write_wall_p(&mut io, b"!\n", t(2)).unwrap();
    assert!(
        io.received[a].ends_with(b"three!\n"),
        "the line goes on unstamped"
    );
    assert_eq!(m.stats(a).unwrap().replayed, 8);
}

#[test]
fn a_queue_with_more_short_lines_than_times_kept_forgets_the_oldest() {
    // A stamped block sink of 1024 bytes keeps the times of 128 lines (one
    // per 8 bytes); 1024 one-byte lines, each written at its own time,
    // stamp the oldest ones unknown, and the newest with their times.
    let (mut m, mut io) = mux(vec![sink(Overflow::Block, DropUnit::Lines, true)], 1024, 0);
    io.behaviour[0] = Behaviour::Stalled;
    for k in 0..1024 {
        assert_eq!(m.write_wall_p(&mut io, b"\n", t(k)), Ok(1));
    }
    io.behaviour[0] = Behaviour::Open;
    m.sink_writable_p(&mut io, 0).unwrap();
    let got = &io.received[0];
    assert_eq!(got.len(), 1024 * 29);
    let times: Vec<[u8; 28]> = got
        .chunks(29)
        .map(|c| c[..28].try_into().unwrap())
        .collect();
    // The first line's time is the queue's front: kept. Of the 1023 after
    // a newline, the ring keeps the newest 128.
    assert_eq!(times[0], format_stamp(t(0)));
    assert!(times[1..896].iter().all(|s| s == UNKNOWN_STAMP));
    for k in 896..1024 {
        assert_eq!(times[k as usize], format_stamp(t(k)), "line {k}");
    }
}

#[test]
fn a_stalled_stamped_viewer_costs_the_same_per_write_whatever_its_queue() {
    // Not timed: the newline search the stamps need is counted
    // (`Mux::scanned_bytes`), and bounded per byte written.
    for unit in [DropUnit::Bytes, DropUnit::Lines] {
        for cap in [1024usize, 1 << 18] {
            let (mut m, mut io) = mux(vec![sink(Overflow::Drop, unit, true)], cap, 0);
            io.behaviour[0] = Behaviour::Budget(28 + 1);
            m.write_wall_p(&mut io, b"ab", t(0)).unwrap();
            // Fill the queue with lines, then keep writing.
            let line = b"0123456\n";
            for k in 0..cap / 8 {
                m.write_wall_p(&mut io, line, t(k as u64)).unwrap();
            }
            let before = m.scanned_bytes(0).unwrap();
            let writes = 4000u64;
            for k in 0..writes {
                m.write_wall_p(&mut io, &line[(k % 8) as usize..][..1], t(k))
                    .unwrap();
            }
            let scanned = m.scanned_bytes(0).unwrap() - before;
            assert!(
                scanned <= 16 * writes,
                "{unit:?}, queue {cap}: {writes} 1-byte writes searched {scanned} bytes"
            );
            let st = m.stats(0).unwrap();
            assert_eq!(st.offered, st.delivered + st.queued + st.dropped);
        }
    }
}
