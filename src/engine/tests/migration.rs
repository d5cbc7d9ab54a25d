//! The replay state across a live migration (issue 18, item 3): exported
//! as a blob, imported into a new multiplexer.

use super::{new_mux, Pumped};
use crate::engine::model::{driven, stream, ScriptIo};
use crate::engine::*;

const T: u64 = 1_796_580_664_783_070_000;

fn config(tail: usize, head: usize) -> Config {
    Config {
        sinks: vec![SinkConfig::new(Overflow::Drop, true)],
        input: None,
        queue_capacity: 64,
        replay_capacity: tail,
        replay_head_capacity: head,
        coalesce_ns: 0,
    }
}

fn export(m: &Mux) -> Vec<u8> {
    let mut blob = vec![0u8; m.replay_export_len()];
    assert_eq!(m.replay_export(&mut blob), Some(blob.len()));
    blob
}

/// What a stamped and an unstamped viewer opening on `m` get, and what
/// they get of `more` written at `wall` afterwards.
fn viewers(m: &mut Mux, io: &mut ScriptIo, more: &[u8], wall: u64) -> [Vec<u8>; 2] {
    let mut got = [0, 1].map(|k| {
        let config = SinkConfig {
            timestamp: k == 1,
            ..SinkConfig::new(Overflow::Block, true)
        };
        driven(m, io, |m| m.attach(config)).unwrap()
    });
    m.write_wall_p(io, more, wall).unwrap();
    got.sort_unstable();
    got.map(|i| std::mem::take(&mut io.received[i]))
}

#[test]
fn a_sink_opening_after_import_is_replayed_what_it_would_be_on_the_source() {
    let mut io = ScriptIo::new(MAX_SINKS);
    let mut src = new_mux(config(16, 12), &mut io);
    let data = stream(0, 60);
    for (k, chunk) in data.chunks(9).enumerate() {
        src.write_wall_p(&mut io, chunk, T + k as u64 * 1_000_000)
            .unwrap();
    }
    // Mid-line: the destination goes on with the same line.
    src.write_wall_p(&mut io, b"ab\ncd", T + 99_000_000)
        .unwrap();
    let blob = export(&src);

    let mut dio = ScriptIo::new(MAX_SINKS);
    let mut dst = new_mux(config(16, 12), &mut dio);
    dst.replay_import(&blob).unwrap();
    assert_eq!(export(&dst), blob, "the same state, written out again");
    let more = b"ef\ngh";
    let there = viewers(&mut dst, &mut dio, more, T + 100_000_000);
    let here = viewers(&mut src, &mut io, more, T + 100_000_000);
    assert_eq!(there, here);
    // What that is: the head, the marker, the tail, the rest of the line
    // unstamped, then the next line stamped.
    let out = [data.as_slice(), b"ab\ncd"].concat();
    let marker = format!("\r\n[multiplex: {} bytes skipped]\r\n", out.len() - 16 - 12);
    assert_eq!(
        there[0],
        [&out[..12], marker.as_bytes(), &out[out.len() - 16..], more].concat()
    );
    let stamp = format_stamp(T + 100_000_000);
    assert!(there[1].ends_with(&[b"cdef\n".as_slice(), &stamp, b"gh"].concat()));
}

#[test]
fn import_refuses_what_it_cannot_take_and_changes_nothing() {
    let mut io = ScriptIo::new(MAX_SINKS);
    let mut src = new_mux(config(16, 12), &mut io);
    src.write_wall_p(&mut io, &stream(0, 40), T).unwrap();
    let blob = export(&src);

    let mut io2 = ScriptIo::new(MAX_SINKS);
    let fresh = |sinks: &mut ScriptIo, tail, head| new_mux(config(tail, head), sinks);
    // Smaller tail or head than the blob's.
    assert_eq!(
        fresh(&mut io2, 15, 12).replay_import(&blob),
        Err(ImportError::TooLarge)
    );
    assert_eq!(
        fresh(&mut io2, 16, 11).replay_import(&blob),
        Err(ImportError::TooLarge)
    );
    // Larger ones take it.
    let mut big = fresh(&mut io2, 32, 20);
    big.replay_import(&blob).unwrap();
    // Not fresh: output was written.
    let mut used = fresh(&mut io2, 16, 12);
    used.write_p(&mut io2, b"x").unwrap();
    assert_eq!(used.replay_import(&blob), Err(ImportError::NotFresh));
    // Another version, or not a blob.
    let mut m = fresh(&mut io2, 16, 12);
    let mut v2 = blob.clone();
    v2[8] = 2;
    assert_eq!(m.replay_import(&v2), Err(ImportError::Version(2)));
    assert_eq!(m.replay_import(b""), Err(ImportError::Malformed));
    assert_eq!(m.replay_import(&[0u8; 200]), Err(ImportError::Malformed));
    // Every shortened blob is refused.
    for len in 0..blob.len() {
        assert!(m.replay_import(&blob[..len]).is_err(), "{len} bytes");
    }
    // Every byte flipped: refused, or (a byte of the output or a time)
    // taken, and then written out again as it was taken.
    for at in 0..blob.len() {
        let mut bad = blob.clone();
        bad[at] ^= 0x41;
        let mut t = fresh(&mut io2, 16, 12);
        if t.replay_import(&bad).is_ok() {
            assert_eq!(export(&t), bad, "byte {at}");
        }
    }
    // Nothing was taken by the refusals.
    assert_eq!(export(&m), export(&fresh(&mut io2, 16, 12)));
    m.replay_import(&blob).unwrap();
}

#[test]
fn the_blob_says_what_is_documented() {
    let mut io = ScriptIo::new(MAX_SINKS);
    let mut m = new_mux(config(4, 3), &mut io);
    m.write_wall_p(&mut io, b"ab\ncdefg", T).unwrap();
    let blob = export(&m);
    let u64_at = |at: usize| u64::from_le_bytes(blob[at..at + 8].try_into().unwrap());
    assert_eq!(&blob[..8], b"CMXRPLY\0");
    assert_eq!(
        u32::from_le_bytes(blob[8..12].try_into().unwrap()),
        BLOB_VERSION
    );
    assert_eq!(u64_at(16), blob.len() as u64);
    // Written 8; in a line that started at T; 1 byte ("c") skipped.
    assert_eq!(
        (u64_at(24), u64_at(32), u64_at(40), u64_at(48)),
        (8, 1, T, 1)
    );
    // Head: at 0, 3 bytes, its line's time, no times forgotten, one kept
    // (the line after its newline starts after it: none).
    assert_eq!(
        (u64_at(56), u64_at(64), u64_at(72), u64_at(80), u64_at(88)),
        (0, 3, T, 0, 0)
    );
    assert_eq!(&blob[96..99], b"ab\n");
    // Tail: 4 bytes "defg", the time of its line.
    assert_eq!(
        (u64_at(99), u64_at(107), u64_at(115), u64_at(123)),
        (4, T, 0, 0)
    );
    assert_eq!(&blob[131..], b"defg");
}
