//! Hand-written scenarios, one behaviour each.

use super::{new_mux, Pumped};
use crate::engine::model::{stream, Behaviour, ScriptIo};
use crate::engine::*;

fn config(policies: &[Overflow], cap: usize) -> Config {
    Config {
        sinks: super::open_sinks(policies),
        input: Some(policies.len() - 1),
        queue_capacity: cap,
        replay_capacity: 0,
        replay_head_capacity: 0,
        coalesce_ns: 0,
    }
}

/// Writes all of `data`, which must never be turned away.
fn write_all(m: &mut Mux, io: &mut ScriptIo, mut data: &[u8]) {
    while !data.is_empty() {
        let n = m.write_p(io, data).expect("turned away");
        data = &data[n..];
    }
}

fn mux(policies: &[Overflow], cap: usize) -> (Mux, ScriptIo) {
    let mut io = ScriptIo::new(policies.len());
    let m = new_mux(config(policies, cap), &mut io);
    (m, io)
}

use Overflow::{Block, Drop};

#[test]
fn fans_out_every_byte_to_every_open_sink() {
    let (mut m, mut io) = mux(&[Block, Drop, Block], 64);
    let data = stream(0, 1000);
    for chunk in data.chunks(7) {
        assert_eq!(m.write_p(&mut io, chunk), Ok(chunk.len()));
    }
    for i in 0..3 {
        assert_eq!(io.received[i], data);
        let st = m.stats(i).unwrap();
        assert_eq!((st.delivered, st.queued, st.dropped), (1000, 0, 0));
    }
}

#[test]
fn stalled_block_sink_pushes_back_then_resumes_losslessly() {
    let (mut m, mut io) = mux(&[Block, Block], 16);
    io.behaviour[1] = Behaviour::Stalled;
    let data = stream(0, 40);
    assert_eq!(m.write_p(&mut io, &data[..10]), Ok(10));
    assert_eq!(m.write_p(&mut io, &data[10..30]), Ok(6));
    assert_eq!(m.write_p(&mut io, &data[16..]), Err(WouldBlock));
    assert_eq!(m.write_p(&mut io, &data[16..]), Err(WouldBlock));
    assert!(io.watching[1]);
    let st = m.stats(1).unwrap();
    assert_eq!((st.queued, st.backpressure_events), (16, 1));
    assert_eq!(io.received[0], &data[..16]);

    io.behaviour[1] = Behaviour::Budget(3);
    m.sink_writable_p(&mut io, 1).unwrap();
    assert_eq!(m.stats(1).unwrap().queued, 13);
    assert_eq!(
        io.frontend_writable, 0,
        "woken before half the queue drained"
    );
    io.behaviour[1] = Behaviour::Open;
    m.sink_writable_p(&mut io, 1).unwrap();
    assert_eq!(io.frontend_writable, 1);
    assert!(!io.watching[1]);
    assert_eq!(m.write_p(&mut io, &data[16..]), Ok(16));
    m.write_p(&mut io, &data[32..]).unwrap();
    assert_eq!(io.received[0], data);
    assert_eq!(io.received[1], data);
}

#[test]
fn stalled_drop_sink_never_blocks_and_counts_every_lost_byte() {
    let (mut m, mut io) = mux(&[Block, Drop], 8);
    io.behaviour[1] = Behaviour::Stalled;
    let data = stream(0, 100);
    for chunk in data.chunks(3) {
        assert_eq!(m.write_p(&mut io, chunk), Ok(chunk.len()));
    }
    let st = m.stats(1).unwrap();
    assert_eq!((st.offered, st.queued, st.dropped), (100, 8, 92));
    io.behaviour[1] = Behaviour::Open;
    m.sink_writable_p(&mut io, 1).unwrap();
    assert_eq!(
        io.received[1],
        &data[92..],
        "the viewer sees the newest bytes"
    );
    assert_eq!(io.received[0], data);
    assert_eq!(m.stats(1).unwrap().backpressure_events, 0);
}

#[test]
fn failed_sink_is_counted_and_stops_blocking() {
    let (mut m, mut io) = mux(&[Block, Block], 4);
    io.behaviour[1] = Behaviour::Stalled;
    assert_eq!(m.write_p(&mut io, b"abcdef"), Ok(4));
    assert_eq!(m.write_p(&mut io, b"ef"), Err(WouldBlock));
    io.behaviour[1] = Behaviour::FailOnce(32);
    m.sink_writable_p(&mut io, 1).unwrap();
    assert_eq!(io.frontend_writable, 1);
    let st = m.stats(1).unwrap();
    assert_eq!(m.sink_state(1), Ok(SinkState::Failed));
    assert_eq!((st.write_errors, st.last_errno, st.dropped), (1, 32, 4));
    assert!(!io.watching[1]);
    assert_eq!(m.write_p(&mut io, b"ef"), Ok(2));
    assert_eq!(io.received[0], b"abcdef");
    assert!(io.received[1].is_empty());
    // Reconnecting brings it back.
    m.sink_event_p(&mut io, 1, SinkEvent::Closed).unwrap();
    m.sink_event_p(&mut io, 1, SinkEvent::Opened).unwrap();
    m.write_p(&mut io, b"gh").unwrap();
    assert_eq!(io.received[1], b"gh");
}

#[test]
fn closed_sinks_get_nothing_and_closing_a_blocker_wakes_the_frontend() {
    let (mut m, mut io) = mux(&[Block, Block], 4);
    io.behaviour[1] = Behaviour::Stalled;
    m.write_p(&mut io, b"abcd").unwrap();
    assert_eq!(m.write_p(&mut io, b"e"), Err(WouldBlock));
    m.sink_event_p(&mut io, 1, SinkEvent::Closed).unwrap();
    assert_eq!(io.frontend_writable, 1);
    assert_eq!(m.stats(1).unwrap().dropped, 4);
    assert_eq!(m.write_p(&mut io, b"efgh"), Ok(4));
    assert_eq!(io.received[0], b"abcdefgh");
    assert!(io.received[1].is_empty());
}

#[test]
fn frontend_sees_opened_for_the_first_sink_and_closed_for_the_last() {
    let mut cfg = config(&[Block, Block], 8);
    cfg.sinks[0].open = false;
    cfg.sinks[1].open = false;
    let mut io = ScriptIo::new(2);
    let mut m = new_mux(cfg, &mut io);
    assert!(io.events.is_empty());
    // Sink 1 is the input source; sink 0 opens first.
    m.sink_event_p(&mut io, 0, SinkEvent::Opened).unwrap();
    assert_eq!(io.events, [FrontendEvent::Opened]);
    io.events.clear();
    // A client on the input while the frontend is open already starts a
    // new session for it (a monitor greets it), once.
    m.sink_event_p(&mut io, 1, SinkEvent::Opened).unwrap();
    m.sink_event_p(&mut io, 1, SinkEvent::Opened).unwrap();
    assert_eq!(io.events, [FrontendEvent::Closed, FrontendEvent::Opened]);
    io.events.clear();
    m.sink_event_p(&mut io, 0, SinkEvent::Closed).unwrap();
    // Any other sink that opens while the frontend is open changes nothing.
    m.sink_event_p(&mut io, 0, SinkEvent::Opened).unwrap();
    assert!(io.events.is_empty());
    m.sink_event_p(&mut io, 0, SinkEvent::Closed).unwrap();
    m.sink_event_p(&mut io, 1, SinkEvent::Closed).unwrap();
    assert_eq!(io.events, [FrontendEvent::Closed]);

    let (_m, io2) = mux(&[Drop, Block], 8);
    assert_eq!(
        io2.events,
        [FrontendEvent::Opened],
        "open at creation counts"
    );
}

#[test]
fn break_is_forwarded_only_from_the_input_source() {
    let (mut m, mut io) = mux(&[Block, Block], 8);
    io.events.clear();
    m.sink_event_p(&mut io, 0, SinkEvent::Break).unwrap();
    assert!(io.events.is_empty());
    m.sink_event_p(&mut io, 1, SinkEvent::Break).unwrap();
    assert_eq!(io.events, [FrontendEvent::Break]);
}

#[test]
fn input_reaches_the_frontend_only_from_the_source_and_within_its_room() {
    let (mut m, mut io) = mux(&[Block, Block], 8);
    assert_eq!(m.input_room(1, 5), Ok(5));
    assert_eq!(m.input_room(0, 5), Ok(DISCARD_CHUNK));
    assert_eq!(m.input_p(&mut io, 1, b"hello world", 5), Ok(5));
    assert_eq!(m.input_p(&mut io, 0, b"ignored", 100), Ok(7));
    assert_eq!(m.input_p(&mut io, 1, b"x", 0), Ok(0));
    assert_eq!(io.input, b"hello");
    assert_eq!(m.stats(1).unwrap().input_forwarded, 5);
    assert_eq!(m.stats(0).unwrap().input_discarded, 7);
    assert_eq!(m.input_p(&mut io, 2, b"x", 1), Err(NoSuchSink(2)));
}

#[test]
fn no_input_source_discards_all_input() {
    let mut cfg = config(&[Block, Block], 8);
    cfg.input = None;
    let mut io = ScriptIo::new(2);
    let mut m = new_mux(cfg, &mut io);
    assert_eq!(m.input_p(&mut io, 1, b"abc", 10), Ok(3));
    assert!(io.input.is_empty());
}

#[test]
fn replay_gives_a_late_viewer_recent_output_then_live_output() {
    let mut cfg = config(&[Block, Drop], 16);
    cfg.sinks[1].open = false;
    cfg.replay_capacity = 10;
    let mut io = ScriptIo::new(2);
    let mut m = new_mux(cfg, &mut io);
    let data = stream(0, 50);
    write_all(&mut m, &mut io, &data[..30]);
    m.sink_event_p(&mut io, 1, SinkEvent::Opened).unwrap();
    write_all(&mut m, &mut io, &data[30..]);
    assert_eq!(io.received[1], &data[20..]);
    let st = m.stats(1).unwrap();
    assert_eq!((st.replayed, st.offered, st.delivered), (10, 30, 30));
}

#[test]
fn replay_to_a_stalled_viewer_is_queued_not_lost() {
    let mut cfg = config(&[Block, Block], 16);
    cfg.sinks[1].open = false;
    cfg.replay_capacity = 8;
    let mut io = ScriptIo::new(2);
    let mut m = new_mux(cfg, &mut io);
    let data = stream(0, 40);
    write_all(&mut m, &mut io, &data[..20]);
    io.behaviour[1] = Behaviour::Stalled;
    m.sink_event_p(&mut io, 1, SinkEvent::Opened).unwrap();
    assert_eq!(
        m.write_p(&mut io, &data[20..]),
        Ok(8),
        "history holds 8 of 16"
    );
    io.behaviour[1] = Behaviour::Open;
    m.sink_writable_p(&mut io, 1).unwrap();
    write_all(&mut m, &mut io, &data[28..]);
    assert_eq!(io.received[1], &data[12..]);
}

#[test]
fn bad_configurations_are_refused() {
    let err = |cfg: Config| Mux::new(cfg).unwrap_err();
    assert_eq!(err(Config::new(0)), ConfigError::NoSinks);
    assert_eq!(err(Config::new(9)), ConfigError::TooManySinks(9));
    let c = Config {
        input: Some(2),
        ..Config::new(2)
    };
    assert_eq!(err(c), ConfigError::InputOutOfRange { input: 2, sinks: 2 });
    let zero = Config {
        queue_capacity: 0,
        ..Config::new(2)
    };
    assert_eq!(err(zero), ConfigError::ZeroQueueCapacity);
    let huge = Config {
        queue_capacity: MAX_QUEUE_CAPACITY + 1,
        ..Config::new(2)
    };
    assert_eq!(
        err(huge),
        ConfigError::QueueCapacityTooLarge(MAX_QUEUE_CAPACITY + 1)
    );
    let replay = Config {
        replay_capacity: DEFAULT_QUEUE_CAPACITY + 1,
        ..Config::new(2)
    };
    assert!(matches!(err(replay), ConfigError::ReplayTooLarge { .. }));
    // The head may be larger than the queues, up to the largest queue.
    let head = Config {
        replay_head_capacity: MAX_QUEUE_CAPACITY + 1,
        ..Config::new(2)
    };
    assert_eq!(
        err(head),
        ConfigError::ReplayHeadTooLarge(MAX_QUEUE_CAPACITY + 1)
    );
    let big_head = Config {
        queue_capacity: 16,
        replay_head_capacity: 1 << 20,
        ..Config::new(1)
    };
    Mux::new(big_head).unwrap();
    assert_eq!(
        ConfigError::TooManySinks(9).to_string(),
        "9 sinks given, at most 8 are supported"
    );
}

#[test]
fn unknown_sink_indexes_are_refused() {
    let (mut m, mut io) = mux(&[Block, Block], 8);
    assert_eq!(m.sink_writable_p(&mut io, 2), Err(NoSuchSink(2)));
    assert_eq!(
        m.sink_event_p(&mut io, usize::MAX, SinkEvent::Opened),
        Err(NoSuchSink(usize::MAX))
    );
    assert_eq!(m.stats(8), Err(NoSuchSink(8)));
}

/// QEMU's `qemu_chr_fe_write_all()` spins on a refused write while holding
/// the BQL, so no watch is ever dispatched: each refused write must itself
/// try the full sink again, and the stream completes once the sink reads.
#[test]
fn a_writer_that_spins_on_would_block_progresses_without_a_watch() {
    let (mut m, mut io) = mux(&[Block, Block], 16);
    io.behaviour[0] = Behaviour::Stalled;
    let data = stream(0, 100);
    let (mut at, mut refused) = (0, 0);
    while at < data.len() {
        match m.write_p(&mut io, &data[at..]) {
            Ok(n) => at += n,
            Err(WouldBlock) => {
                refused += 1;
                // The reader comes back; nobody reports the sink writable.
                if refused == 5 {
                    io.behaviour[0] = Behaviour::Budget(7);
                }
                if refused == 9 {
                    io.behaviour[0] = Behaviour::Open;
                }
            }
        }
        assert!(refused < 50, "the writer spins without progress");
    }
    assert_eq!(io.received[0], data);
    assert_eq!(io.received[1], data);
    assert_eq!(m.stats(0).unwrap().backpressure_events, 1);
}

/// A `drop` sink that never reads never turns a writer away.
#[test]
fn a_stalled_drop_sink_never_refuses_a_write() {
    let (mut m, mut io) = mux(&[Drop, Block], 16);
    io.behaviour[0] = Behaviour::Stalled;
    let data = stream(0, 1000);
    write_all(&mut m, &mut io, &data);
    assert_eq!(io.received[1], data);
    let st = m.stats(0).unwrap();
    assert_eq!((st.queued, st.dropped), (16, 1000 - 16));
}

/// Issue 17, items 4 and 9a: being detached is a state of the engine's own
/// (not a flag next to `Open`): a stalled `block` sink with a backlog is
/// `Detaching` while it drains, then `Detached` with one report; a closed
/// sink, or an open one with nothing queued, is `Detached` at once.
#[test]
fn detaching_and_detached_are_states_of_the_engine() {
    let (mut m, mut io) = mux(&[Block, Block, Block], 8);
    io.behaviour[1] = Behaviour::Stalled;
    write_all(&mut m, &mut io, b"abcdef");
    assert_eq!(m.detach(1), Ok(6));
    assert_eq!(m.sink_state(1), Ok(SinkState::Detaching));
    assert_eq!(m.poll_sink_report(), None);
    // What it still owes counts in the backlog that a caller writes out
    // before freeing the multiplexer (QEMU's exit drain).
    assert_eq!(m.lossless_backlog(), 6);
    io.behaviour[1] = Behaviour::Partial(4);
    m.sink_writable_p(&mut io, 1).unwrap();
    assert_eq!(io.received[1], b"abcdef");
    assert_eq!(m.sink_state(1), Ok(SinkState::Detached));
    assert_eq!(io.reports, [SinkReport::Detached { sink: 1 }]);
    // Nothing queued: detached at once.
    m.sink_event_p(&mut io, 2, SinkEvent::Closed).unwrap();
    assert_eq!(m.detach(2), Ok(0));
    assert_eq!(m.sink_state(2), Ok(SinkState::Detached));
    assert_eq!(m.poll_sink_report(), Some(SinkReport::Detached { sink: 2 }));
    // A detached sink heeds no event, and cannot become the input.
    m.sink_event_p(&mut io, 2, SinkEvent::Opened).unwrap();
    assert_eq!(m.sink_state(2), Ok(SinkState::Detached));
    assert_eq!(m.set_input(Some(2)), Err(NoSuchSink(2)));
    assert_eq!(m.release(2).map(|st| st.queued), Ok(0));
    assert_eq!(m.sink_state(2), Err(NoSuchSink(2)));
}
