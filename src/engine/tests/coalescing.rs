//! Coalescing scenarios: `write_at` on a scripted clock (nanoseconds).

use super::{new_mux, Pumped};
use crate::engine::model::{stream, Behaviour, ScriptIo};
use crate::engine::*;

const MS: u64 = 1_000_000;
const US: u64 = 1_000;

fn mux(policies: &[Overflow], cap: usize, coalesce: u64) -> (Mux, ScriptIo) {
    let config = Config {
        sinks: super::open_sinks(policies),
        input: Some(0),
        queue_capacity: cap,
        replay_capacity: 0,
        replay_head_capacity: 0,
        coalesce_ns: coalesce,
    };
    let mut io = ScriptIo::new(policies.len());
    let m = new_mux(config, &mut io);
    (m, io)
}

/// A 16550-like stream: one byte every `gap` ns, with the flush timer firing
/// on time. Returns the time after the last byte.
fn stream_bytes(m: &mut Mux, io: &mut ScriptIo, data: &[u8], gap: u64) -> u64 {
    let mut now = 0;
    for b in data {
        now += gap;
        if let Some(d) = m.poll_timeout().filter(|&d| d <= now) {
            m.flush_p(io, d);
        }
        assert_eq!(m.write_at_p(io, std::slice::from_ref(b), now), Ok(1));
    }
    now
}

#[test]
fn a_byte_stream_costs_one_write_per_window_per_sink() {
    let (mut m, mut io) = mux(&[Overflow::Block, Overflow::Drop], 4096, MS);
    // 4 us per byte is about 0.24 MiB/s, the test guest's speed.
    let data = stream(0, 10_000);
    let end = stream_bytes(&mut m, &mut io, &data, 4 * US);
    m.flush_p(&mut io, end);
    for i in 0..2 {
        assert_eq!(io.received[i], data, "sink {i}");
        // 40 ms of output: the first byte, then one write per 1 ms window.
        assert!(io.writes[i] <= 42, "sink {i}: {} writes", io.writes[i]);
        let st = m.stats(i).unwrap();
        assert_eq!((st.delivered, st.queued, st.dropped), (10_000, 0, 0));
        assert!(st.queue_high_water <= 251, "{}", st.queue_high_water);
    }
}

#[test]
fn output_after_a_quiet_window_goes_out_at_once() {
    let (mut m, mut io) = mux(&[Overflow::Block], 64, MS);
    assert_eq!(m.write_at_p(&mut io, b"a", 0), Ok(1));
    assert_eq!(io.received[0], b"a");
    // Within the window: held, with a deadline one window after the last output.
    assert_eq!(m.write_at_p(&mut io, b"b", 10 * US), Ok(1));
    assert_eq!(io.received[0], b"a");
    assert_eq!(m.poll_timeout(), Some(MS));
    m.flush_p(&mut io, MS);
    assert_eq!(io.received[0], b"ab");
    assert_eq!(m.poll_timeout(), None);
    // A keystroke's echo 5 ms later is not held.
    assert_eq!(m.write_at_p(&mut io, b"c", 6 * MS), Ok(1));
    assert_eq!(io.received[0], b"abc");
    assert_eq!(m.poll_timeout(), None);
}

#[test]
fn a_write_that_does_not_fit_flushes_first_and_keeps_order() {
    let (mut m, mut io) = mux(&[Overflow::Block, Overflow::Drop], 8, MS);
    let data = stream(0, 30);
    assert_eq!(m.write_at_p(&mut io, &data[..1], 0), Ok(1));
    assert_eq!(m.write_at_p(&mut io, &data[1..7], 1), Ok(6));
    assert_eq!(io.received[0].len(), 1);
    // 6 held, 2 free: 5 more do not fit, so the 6 are released first and the
    // write takes what fits now (the caller writes them out after the call).
    assert_eq!(m.write_at_p(&mut io, &data[7..12], 2), Ok(2));
    assert_eq!(m.poll_timeout(), None);
    assert_eq!(io.received[0], &data[..9]);
    // Never more than the block sink's queue per call, as with `write`. A
    // queue full of released output turns a write away until the caller has
    // written it out (the pump does, after each call): retrying makes progress.
    let mut at = 9;
    let mut refused = 0;
    while at < data.len() {
        match m.write_at_p(&mut io, &data[at..], 3) {
            Ok(n) => at += n,
            Err(WouldBlock) => refused += 1,
        }
        assert!(refused < 10, "no progress");
    }
    m.flush_p(&mut io, MS);
    assert_eq!(io.received[0], data);
    assert_eq!(io.received[1], data);
    assert_eq!(m.stats(1).unwrap().dropped, 0);
}

#[test]
fn held_output_waits_behind_a_stalled_sink_without_losing_bytes() {
    let (mut m, mut io) = mux(&[Overflow::Block, Overflow::Drop], 16, MS);
    io.behaviour[0] = Behaviour::Stalled;
    let data = stream(0, 40);
    assert_eq!(m.write_at_p(&mut io, &data[..4], 0), Ok(4));
    assert!(io.watching[0]);
    assert_eq!(m.write_at_p(&mut io, &data[4..10], US), Ok(6));
    m.flush_p(&mut io, MS);
    // The stalled sink keeps its queue and its watch; the other got everything.
    assert_eq!(io.received[1], &data[..10]);
    assert_eq!(m.stats(0).unwrap().queued, 10);
    assert_eq!(m.write_at_p(&mut io, &data[10..40], MS + 1), Ok(6));
    assert_eq!(
        m.write_at_p(&mut io, &data[16..40], MS + 2),
        Err(WouldBlock)
    );
    io.behaviour[0] = Behaviour::Open;
    m.sink_writable_p(&mut io, 0).unwrap();
    assert_eq!(io.frontend_writable, 1);
    m.flush_p(&mut io, 2 * MS);
    assert_eq!(io.received[0], &data[..16]);
    assert_eq!(io.received[1], &data[..16]);
}

#[test]
fn a_plain_write_flushes_held_output_first() {
    let (mut m, mut io) = mux(&[Overflow::Block], 64, MS);
    assert_eq!(m.write_at_p(&mut io, b"a", 0), Ok(1));
    assert_eq!(m.write_at_p(&mut io, b"b", 1), Ok(1));
    assert_eq!(m.write_p(&mut io, b"c"), Ok(1));
    assert_eq!(io.received[0], b"abc");
    assert_eq!(m.poll_timeout(), None);
}

#[test]
fn a_sink_that_closes_while_output_is_held_counts_it_dropped() {
    let (mut m, mut io) = mux(&[Overflow::Block, Overflow::Block], 64, MS);
    assert_eq!(m.write_at_p(&mut io, b"a", 0), Ok(1));
    assert_eq!(m.write_at_p(&mut io, b"bcd", 1), Ok(3));
    m.sink_event_p(&mut io, 1, SinkEvent::Closed).unwrap();
    m.flush_p(&mut io, MS);
    assert_eq!(io.received[0], b"abcd");
    let st = m.stats(1).unwrap();
    assert_eq!((st.offered, st.delivered, st.dropped), (4, 1, 3));
}

#[test]
fn a_window_of_zero_writes_every_byte_at_once() {
    let (mut m, mut io) = mux(&[Overflow::Block], 64, 0);
    for (k, b) in stream(0, 10).iter().enumerate() {
        assert_eq!(m.write_at_p(&mut io, &[*b], k as u64), Ok(1));
        assert_eq!(m.poll_timeout(), None);
    }
    assert_eq!(io.writes[0], 10);
}

#[test]
fn a_window_over_the_maximum_is_refused() {
    let mut config = Config::new(1);
    config.coalesce_ns = MAX_COALESCE_NS + 1;
    assert_eq!(
        config.validate(),
        Err(ConfigError::CoalesceTooLong(MAX_COALESCE_NS + 1))
    );
    config.coalesce_ns = MAX_COALESCE_NS;
    assert_eq!(config.validate(), Ok(()));
}

#[test]
fn input_flushes_held_output_and_its_echo_goes_out_at_once() {
    let (mut m, mut io) = mux(&[Overflow::Block, Overflow::Drop], 64, MS);
    assert_eq!(m.write_at_p(&mut io, b"$", 0), Ok(1));
    assert_eq!(m.write_at_p(&mut io, b" ", 10 * US), Ok(1));
    assert_eq!(io.received[0], b"$");
    // A keystroke 20 us later: the prompt is flushed before it reaches the guest...
    assert_eq!(m.input_p(&mut io, 0, b"l", 16), Ok(1));
    assert_eq!(io.received[0], b"$ ");
    assert_eq!(m.poll_timeout(), None);
    // ...and its echo, within the window of the last output, is not held.
    assert_eq!(m.write_at_p(&mut io, b"l", 30 * US), Ok(1));
    assert_eq!(io.received[0], b"$ l");
    assert_eq!(io.received[1], b"$ l");
    // Input from a sink that is not the input source changes nothing.
    assert_eq!(m.write_at_p(&mut io, b"s", 40 * US), Ok(1));
    assert_eq!(m.input_p(&mut io, 1, b"x", 16), Ok(1));
    assert_eq!(io.received[0], b"$ l");
    assert_eq!(m.poll_timeout(), Some(30 * US + MS));
}

#[test]
fn a_full_drop_queue_behind_a_stalled_viewer_does_not_end_coalescing() {
    let (mut m, mut io) = mux(&[Overflow::Block, Overflow::Drop], 1024, MS);
    io.behaviour[1] = Behaviour::Stalled;
    let data = stream(0, 4000);
    let end = stream_bytes(&mut m, &mut io, &data, 4 * US);
    m.flush_p(&mut io, end);
    assert_eq!(io.received[0], data);
    // The log still gets one write per window, though the viewer's queue is full.
    assert!(io.writes[0] <= 18, "{} writes to the log", io.writes[0]);
    let viewer = m.stats(1).unwrap();
    assert_eq!((viewer.queued, viewer.dropped), (1024, 4000 - 1024));
}
