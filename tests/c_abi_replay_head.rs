//! The replay head through the C ABI (`cmx_mux_config.replay_head_capacity`,
//! `cmx_mux_reset_head()`), over real socketpairs: a viewer that connects
//! late gets the first output, one skip marker, the last output, then live
//! output; each byte once.

mod harness;

use harness::*;

const HEAD: usize = 4096;
const TAIL: usize = 1024;

fn viewer(timestamp: bool) -> cmx_sink_config {
    cmx_sink_config {
        open: true,
        timestamp,
        ..sink_defaults()
    }
}

/// A log that is always open, a head larger than the queues, and a tail.
fn rig() -> Rig {
    let cfg = Cfg::new(&[block()]).queue(2048).replay(TAIL).head(HEAD);
    Rig::new(&cfg)
}

/// `data[range]` as a stamped sink gets it when it starts a piece (after a
/// marker, or at the start): every line stamped, the first one too.
fn stamped_piece(data: &[u8], walls: &[u64], range: std::ops::Range<usize>) -> Vec<u8> {
    let mut out = Vec::new();
    for k in range.clone() {
        if k == range.start || data[k - 1] == b'\n' {
            // The time of the line this byte is part of: where it started.
            let start = data[..k]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1);
            out.extend(stamp_of(walls[start]));
        }
        out.push(data[k]);
    }
    out
}

#[test]
fn a_viewer_connecting_late_gets_head_marker_tail_then_live_output() {
    let mut rig = rig();
    let data = stream(64 * 1024);
    let mut walls = Vec::new();
    for (n, chunk) in data.chunks(1000).enumerate() {
        let wall = 1_796_580_664_783_070_000 + n as u64 * 7_000_001;
        assert_eq!(
            rig.mux.write_at_wall(chunk, 0, wall),
            (cmx_result::Ok, chunk.len())
        );
        walls.extend(std::iter::repeat_n(wall, chunk.len()));
        rig.drain();
    }
    let plain = rig.attach_new(&viewer(false), false).unwrap();
    let stamped = rig.attach_new(&viewer(true), false).unwrap();
    rig.drain();
    let skipped = (data.len() - HEAD - TAIL) as u64;
    let tail = data.len() - TAIL..data.len();
    assert_bytes_eq(
        "plain viewer",
        rig.received(plain),
        &[&data[..HEAD], &skip_marker(skipped), &data[tail.clone()]].concat(),
    );
    assert_bytes_eq(
        "stamped viewer",
        rig.received(stamped),
        &[
            stamped_piece(&data, &walls, 0..HEAD),
            skip_marker(skipped),
            stamped_piece(&data, &walls, tail),
        ]
        .concat(),
    );
    for v in [plain, stamped] {
        let st = rig.mux.stats(v);
        assert_balanced("viewer", &st);
        assert_eq!(
            (st.replayed, st.delivered),
            ((HEAD + TAIL) as u64, (HEAD + TAIL) as u64)
        );
        assert_eq!(
            (st.skip_markers, st.skip_marker_bytes),
            (1, skip_marker(skipped).len() as u64)
        );
        assert_eq!(written_to(&st), rig.received(v).len() as u64);
    }
    // Live output follows.
    assert_eq!(rig.mux.write(b"live\n"), (cmx_result::Ok, 5));
    rig.drain();
    assert!(rig
        .received(plain)
        .ends_with(&[&data[data.len() - 4..], b"live\n"].concat()));
}

#[test]
fn after_a_reset_the_head_is_the_new_boots() {
    let mut rig = rig();
    let boot1 = stream(20_000);
    rig.pump_all(&boot1);
    rig.mux.reset_head();
    let boot2: Vec<u8> = stream(30_000).iter().map(u8::to_ascii_uppercase).collect();
    rig.pump_all(&boot2);
    rig.drain();
    let v = rig.attach_new(&viewer(false), false).unwrap();
    rig.drain();
    let skipped = (boot2.len() - HEAD - TAIL) as u64;
    assert_bytes_eq(
        "viewer",
        rig.received(v),
        &[
            &boot2[..HEAD],
            &skip_marker(skipped),
            &boot2[boot2.len() - TAIL..],
        ]
        .concat(),
    );
}

#[test]
fn a_reset_while_a_slow_viewer_is_replayed_the_head_cuts_it_short() {
    const HEAD: usize = 64 * 1024;
    let cfg = Cfg::new(&[block()]).queue(2048).replay(TAIL).head(HEAD);
    let mut rig = Rig::with_tiny_buffers(&cfg);
    let data = stream(100_000);
    rig.pump_all(&data);
    rig.drain();
    // The viewer does not read: what fits in its socket is written, the
    // rest of the head waits.
    let v = rig.attach_new(&viewer(false), true).unwrap();
    let before = rig.mux.stats(v);
    assert!(before.queued > 0, "the head went out at once: {before:?}");
    rig.mux.reset_head();
    let cut = rig.mux.stats(v);
    assert_eq!(cut.queued, TAIL as u64, "the rest of the head was kept");
    assert_balanced("viewer", &cut);
    rig.pause(v, false);
    rig.drain();
    let got = rig.received(v).to_vec();
    let head_part = (before.delivered) as usize;
    let lost = (before.queued as usize) - TAIL;
    assert_eq!(cut.dropped, lost as u64);
    // What it had, then one marker for what it lost and what was skipped anyway.
    let skipped = (lost + data.len() - HEAD - TAIL) as u64;
    assert_bytes_eq(
        "viewer",
        &got,
        &[
            &data[..head_part],
            &skip_marker(skipped),
            &data[data.len() - TAIL..],
        ]
        .concat(),
    );
}
