//! Whole-line drops cost a bounded amount of newline searching per byte
//! written, whatever the queue's size (issue 17, item 1).
//!
//! Not timed: the engine counts the bytes it searches for newlines
//! ([`Mux::scanned_bytes`]), and the tests bound that count.

use super::{new_mux, Pumped};
use crate::engine::model::{Behaviour, ScriptIo};
use crate::engine::*;

fn lines_viewer(cap: usize) -> (Mux, ScriptIo) {
    let config = Config {
        sinks: vec![SinkConfig {
            overflow: Overflow::Drop,
            open: true,
            drop_unit: DropUnit::Lines,
            drop_notice: false,
            timestamp: false,
        }],
        input: None,
        queue_capacity: cap,
        replay_capacity: 0,
        replay_head_capacity: 0,
        coalesce_ns: 0,
    };
    let mut io = ScriptIo::new(1);
    // Takes the first byte of a line, then stalls: the rest of that line is
    // kept whole, and the queue fills.
    io.behaviour[0] = Behaviour::Budget(1);
    let m = new_mux(config, &mut io);
    (m, io)
}

/// Writes `data` in writes of at most `chunk` bytes (never turned away: the
/// only sink drops).
fn write(m: &mut Mux, io: &mut ScriptIo, data: &[u8], chunk: usize) {
    for c in data.chunks(chunk) {
        assert_eq!(m.write_p(io, c), Ok(c.len()));
    }
}

/// `lines`: the queue holds one line with no newline (longer than the
/// queue, so it falls back to bytes); every later 1-byte write used to
/// search the whole queue again.
#[test]
fn a_line_without_a_newline_is_not_searched_again_per_write() {
    for cap in [1024usize, 16 * 1024] {
        let (mut m, mut io) = lines_viewer(cap);
        write(&mut m, &mut io, b"ab", 2);
        assert_eq!(io.received[0], b"a");
        write(&mut m, &mut io, &vec![b'x'; cap], cap);
        let before = m.scanned_bytes(0).unwrap();
        let writes = 2000;
        write(&mut m, &mut io, &vec![b'y'; writes], 1);
        let scanned = m.scanned_bytes(0).unwrap() - before;
        let bound = 4 * (writes + cap) as u64;
        assert!(
            scanned <= bound,
            "queue {cap}: {writes} 1-byte writes searched {scanned} bytes (bound {bound})"
        );
        let st = m.stats(0).unwrap();
        assert_eq!(st.offered, st.delivered + st.queued + st.dropped);
        assert_eq!(st.queued as usize, cap);
    }
}

/// The line the viewer started ends far down the queue: finding where it
/// ends (so that it is kept whole) used to search up to there per write.
#[test]
fn the_end_of_a_long_started_line_is_found_once() {
    for cap in [1024usize, 16 * 1024] {
        let (mut m, mut io) = lines_viewer(cap);
        // The started line: most of the queue, then a newline, then short lines.
        let mut head = vec![b'x'; cap - cap / 8];
        head[0] = b'a';
        head.push(b'\n');
        write(&mut m, &mut io, &head, cap);
        assert_eq!(io.received[0], b"a");
        let before = m.scanned_bytes(0).unwrap();
        let mut written = 0;
        for k in 0..4000 {
            let line: &[u8] = if k % 4 == 3 { b"l\n" } else { b"m" };
            write(&mut m, &mut io, line, 1);
            written += line.len();
        }
        let scanned = m.scanned_bytes(0).unwrap() - before;
        let bound = 4 * (written + cap) as u64;
        assert!(
            scanned <= bound,
            "queue {cap}: {written} bytes of short lines searched {scanned} bytes (bound {bound})"
        );
        // The started line is still whole at the front.
        let st = m.stats(0).unwrap();
        assert!(st.dropped > 0, "{st:?}");
        io.behaviour[0] = Behaviour::Open;
        m.sink_writable_p(&mut io, 0).unwrap();
        assert!(io.received[0].starts_with(&head[..head.len()]));
    }
}
