//! The replay head (issue 18, item 2): the first bytes of the output kept
//! besides the tail, one marker for the bytes between that neither kept.

use super::{new_mux, Pumped};
use crate::engine::model::{driven, stream, Behaviour, ScriptIo};
use crate::engine::*;

fn mux(cap: usize, tail: usize, head: usize) -> (Mux, ScriptIo) {
    let mut io = ScriptIo::new(MAX_SINKS);
    let config = Config {
        // A log that is always open, so that output is never turned away.
        sinks: vec![SinkConfig::new(Overflow::Drop, true)],
        input: None,
        queue_capacity: cap,
        replay_capacity: tail,
        replay_head_capacity: head,
        coalesce_ns: 0,
    };
    let m = new_mux(config, &mut io);
    (m, io)
}

fn write(m: &mut Mux, io: &mut ScriptIo, data: &[u8]) {
    for chunk in data.chunks(7) {
        assert_eq!(m.write_p(io, chunk), Ok(chunk.len()));
    }
}

fn viewer(stamped: bool) -> SinkConfig {
    SinkConfig {
        timestamp: stamped,
        ..SinkConfig::new(Overflow::Block, true)
    }
}

fn attach(m: &mut Mux, io: &mut ScriptIo, config: SinkConfig) -> usize {
    driven(m, io, |m| m.attach(config)).unwrap()
}

fn marker(n: u64) -> Vec<u8> {
    format!("\r\n[multiplex: {n} bytes skipped]\r\n").into_bytes()
}

#[test]
fn head_then_one_marker_then_tail() {
    let (mut m, mut io) = mux(64, 10, 10);
    let data = stream(0, 35);
    write(&mut m, &mut io, &data);
    let v = attach(&mut m, &mut io, viewer(false));
    let want = [&data[..10], &marker(15), &data[25..]].concat();
    assert_eq!(io.received[v], want);
    let st = m.stats(v).unwrap();
    assert_eq!((st.offered, st.delivered, st.replayed), (20, 20, 20));
    assert_eq!(
        (st.skip_markers, st.skip_marker_bytes),
        (1, marker(15).len() as u64)
    );
    // Then live output.
    write(&mut m, &mut io, b"live");
    assert!(io.received[v].ends_with(&[&data[25..], b"live"].concat()));
}

#[test]
fn a_head_and_tail_that_overlap_are_replayed_once() {
    for written in [5usize, 10, 15, 20] {
        let (mut m, mut io) = mux(64, 10, 10);
        let data = stream(0, written);
        write(&mut m, &mut io, &data);
        let v = attach(&mut m, &mut io, viewer(false));
        assert_eq!(io.received[v], data, "after {written} bytes");
        assert_eq!(m.stats(v).unwrap().skip_markers, 0);
    }
}

#[test]
fn a_head_without_a_tail_and_a_head_larger_than_the_queue() {
    // No tail: the head, and what came after it is counted as skipped.
    let (mut m, mut io) = mux(16, 0, 100);
    let data = stream(0, 250);
    write(&mut m, &mut io, &data);
    let v = attach(&mut m, &mut io, viewer(false));
    assert_eq!(io.received[v], [&data[..100], &marker(150)].concat());
    // A head of 100 bytes through queues of 16: it is written from where
    // it is kept, and live output queues behind it.
    let (mut big, mut bio) = mux(16, 8, 100);
    write(&mut big, &mut bio, &data);
    bio.behaviour[1] = Behaviour::Stalled;
    let w = attach(&mut big, &mut bio, viewer(false));
    write(&mut big, &mut bio, b"more");
    // Waiting: the head, the tail and the live bytes.
    assert_eq!(big.stats(w).unwrap().queued, 112);
    bio.behaviour[1] = Behaviour::Partial(5);
    big.sink_writable_p(&mut bio, w).unwrap();
    assert_eq!(
        bio.received[w],
        [&data[..100], &marker(142), &data[242..], b"more"].concat()
    );
    let st = big.stats(w).unwrap();
    assert_eq!((st.replayed, st.queue_high_water), (108, 112));
}

#[test]
fn reset_head_starts_a_new_head_and_the_tail_bridges_the_reset() {
    let (mut m, mut io) = mux(64, 6, 8);
    let boot1 = stream(0, 30);
    write(&mut m, &mut io, &boot1);
    m.reset_head();
    // Right after the reset the tail holds the end of the last boot: it is
    // replayed (the new head is in it).
    write(&mut m, &mut io, b"new");
    let v = attach(&mut m, &mut io, viewer(false));
    assert_eq!(io.received[v], [&boot1[27..], b"new"].concat());
    let boot2 = stream(100, 20);
    write(&mut m, &mut io, &boot2);
    let w = attach(&mut m, &mut io, viewer(false));
    let all2 = [b"new".as_slice(), &boot2].concat();
    assert_eq!(
        io.received[w],
        [&all2[..8], &marker(9), &all2[17..]].concat()
    );
}

#[test]
fn a_reset_cuts_a_head_replay_under_way_and_the_marker_says_so() {
    let (mut m, mut io) = mux(64, 4, 20);
    let data = stream(0, 50);
    write(&mut m, &mut io, &data);
    io.behaviour[1] = Behaviour::Budget(5);
    let v = attach(&mut m, &mut io, viewer(false));
    assert_eq!(io.received[v], &data[..5]);
    m.reset_head();
    let cut = m.stats(v).unwrap();
    assert_eq!((cut.queued, cut.dropped), (4, 15));
    io.behaviour[1] = Behaviour::Open;
    m.sink_writable_p(&mut io, v).unwrap();
    // The 15 head bytes cut off and the 26 between head and tail.
    assert_eq!(
        io.received[v],
        [&data[..5], &marker(41), &data[46..]].concat()
    );
    let st = m.stats(v).unwrap();
    assert_eq!(st.offered, st.delivered + st.queued + st.dropped);
}

#[test]
fn stamped_sinks_get_the_heads_and_the_tails_stamps() {
    const T: u64 = 1_796_580_664_783_070_000;
    let (mut m, mut io) = mux(64, 6, 6);
    m.write_wall_p(&mut io, b"ab\ncd", T).unwrap();
    m.write_wall_p(&mut io, b"ef\ngh", T + 1000).unwrap();
    m.write_wall_p(&mut io, b"ijk\nl", T + 2000).unwrap();
    // Output "ab\ncdef\nghijk\nl": head "ab\ncde", tail "hijk\nl", "f\ng" skipped.
    let s = |dt: u64| format_stamp(T + dt).to_vec();
    let v = attach(&mut m, &mut io, viewer(true));
    let want = [
        s(0),
        b"ab\n".to_vec(),
        s(0),
        b"cde".to_vec(),
        marker(3),
        // The tail starts in the middle of "ghijk\n", which started at T + 1000.
        s(1000),
        b"hijk\n".to_vec(),
        s(2000),
        b"l".to_vec(),
    ]
    .concat();
    assert_eq!(io.received[v], want);
    let u = attach(&mut m, &mut io, viewer(false));
    assert_eq!(
        io.received[u],
        [b"ab\ncde".as_slice(), &marker(3), b"hijk\nl"].concat()
    );
}
