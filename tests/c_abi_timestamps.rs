//! Line stamps through the C ABI (`cmx_sink_config.timestamp`,
//! `cmx_mux_write_at_wall()`), over real socketpairs: each line a stamped
//! sink gets starts with the time its first byte was written, other sinks
//! get the bytes as they are, and the counters keep the two apart.

mod harness;

use harness::*;

/// 2026-12-06T18:11:04.783070Z.
const T0: u64 = 1_796_580_664_783_070_000;

fn sink_with(overflow: cmx_overflow, unit: cmx_drop_unit, timestamp: bool) -> cmx_sink_config {
    cmx_sink_config {
        overflow: overflow as u32,
        drop_unit: unit as u32,
        open: true,
        timestamp,
        ..sink_defaults()
    }
}

/// Writes `data` with `cmx_mux_write_at_wall()` in chunks, each at its own
/// wall clock; returns the wall clock each byte was written at.
fn write_with_walls(rig: &mut Rig, data: &[u8]) -> Vec<u64> {
    let mut walls = Vec::with_capacity(data.len());
    let mut off = 0;
    let mut n = 0u64;
    let start = std::time::Instant::now();
    while off < data.len() {
        let len = rig.chunks.next_len().min(data.len() - off);
        let wall = T0 + n * 1_000_123;
        n += 1;
        let (r, acc) = rig.mux.write_at_wall(&data[off..off + len], 0, wall);
        match r {
            cmx_result::Ok => {
                walls.extend(std::iter::repeat_n(wall, acc));
                off += acc;
            }
            cmx_result::WouldBlock => {
                rig.service(10);
            }
            r => panic!("write_at_wall: {r:?}"),
        }
        rig.service(0);
        assert!(start.elapsed() < deadline(), "the writer stayed blocked");
    }
    walls
}

#[test]
fn stamped_and_plain_sinks_over_socketpairs() {
    let cfg = Cfg::new(&[
        sink_with(cmx_overflow::Block, cmx_drop_unit::Lines, true),
        sink_with(cmx_overflow::Block, cmx_drop_unit::Lines, false),
    ])
    .queue(4096);
    let mut rig = Rig::new(&cfg);
    rig.chunks = Chunks::random(40);
    let data = stream(9 * 22_222);
    let walls = write_with_walls(&mut rig, &data);
    rig.drain();
    let want = stamped(&data, |k| walls[k]);
    assert_bytes_eq("stamped sink", rig.received(0), &want);
    assert_bytes_eq("plain sink", rig.received(1), &data);
    let lines = data.iter().filter(|&&b| b == b'\n').count() as u64;
    let st = rig.mux.stats(0);
    assert_balanced("stamped", &st);
    assert_eq!(
        (st.offered, st.delivered, st.stamps, st.stamp_bytes),
        (data.len() as u64, data.len() as u64, lines, 28 * lines)
    );
    assert_eq!(written_to(&st), want.len() as u64);
    let plain = rig.mux.stats(1);
    assert_eq!((plain.stamps, plain.stamp_bytes), (0, 0));
}

#[test]
fn a_stalled_drop_viewer_gets_whole_lines_each_with_its_own_time() {
    let mut viewer = sink_with(cmx_overflow::Drop, cmx_drop_unit::Lines, true);
    viewer.drop_notice = true;
    let cfg = Cfg::new(&[
        sink_with(cmx_overflow::Block, cmx_drop_unit::Lines, false),
        viewer,
    ])
    .queue(4096);
    let mut rig = Rig::with_tiny_buffers(&cfg);
    rig.chunks = Chunks::random(64);
    rig.pause(1, true);
    let data = stream(9 * 33_333);
    let half = write_with_walls(&mut rig, &data[..150_000]);
    rig.pause(1, false);
    let second = write_with_walls(&mut rig, &data[150_000..]);
    let walls = [half, second].concat();
    rig.drain();
    let st = rig.mux.stats(1);
    assert!(st.dropped > 0, "the viewer never fell behind: {st:?}");
    assert_balanced("viewer", &st);
    assert_eq!(written_to(&st), rig.received(1).len() as u64);
    // Take out the drop notices, then every line is a stamp and a whole
    // record of the stream, stamped with the time its first byte came.
    let got = rig.received(1).to_vec();
    let mut rest = got.as_slice();
    let (mut lines, mut notices) = (0u64, 0u64);
    while !rest.is_empty() {
        if rest.starts_with(b"\r\n[multiplex: ") {
            let end = rest.windows(3).position(|w| w == b"]\r\n").unwrap() + 3;
            assert!(rest[..end].ends_with(b" dropped]\r\n"));
            notices += 1;
            rest = &rest[end..];
            continue;
        }
        let (stamp, line) = rest.split_at(28);
        let end = line.iter().position(|&b| b == b'\n').expect("a whole line") + 1;
        let record = &line[..end];
        let k =
            u32::from_str_radix(std::str::from_utf8(&record[..8]).unwrap(), 16).unwrap() as usize;
        assert_eq!(record, &data[9 * k..9 * k + 9], "line {lines}");
        assert_eq!(
            stamp,
            stamp_of(walls[9 * k]).as_slice(),
            "line {lines} ({k})"
        );
        lines += 1;
        rest = &line[end..];
    }
    assert_eq!((st.stamps, st.notices), (lines, notices));
    assert!(notices > 0);
}

#[test]
fn without_a_wall_clock_the_stamp_says_unknown() {
    let cfg = Cfg::new(&[sink_with(cmx_overflow::Block, cmx_drop_unit::Lines, true)]);
    let mut rig = Rig::new(&cfg);
    assert_eq!(rig.mux.write(b"one\n"), (cmx_result::Ok, 4));
    assert_eq!(rig.mux.write_at(b"two\n", 7), (cmx_result::Ok, 4));
    assert_eq!(
        rig.mux.write_at_wall(b"three\n", 8, u64::MAX),
        (cmx_result::Ok, 6)
    );
    rig.drain();
    let unknown = stamp_of(u64::MAX);
    assert_eq!(
        rig.received(0),
        [
            &unknown,
            b"one\n".as_slice(),
            &unknown,
            b"two\n",
            &unknown,
            b"three\n"
        ]
        .concat()
    );
}
