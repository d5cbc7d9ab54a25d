//! What the QEMU glue needs for issue 17/18, through the C ABI over real
//! socketpairs: detaching finishes in the background and is reported
//! (item 9a); `drop` sinks report when they start and stop dropping, and a
//! failure is reported once (item 9b); what the frontend offered and was
//! refused is counted (item 9c).

mod harness;

use std::os::fd::AsRawFd;
use std::time::Duration;

use harness::*;

const STALL: Duration = Duration::from_millis(150);

fn kind(r: &cmx_sink_report) -> cmx_sink_report_kind {
    cmx_sink_report_kind::try_from(r.kind).unwrap()
}

/// The reports about `sink` so far, taken out of the context.
fn take_reports(rig: &mut Rig, sink: usize) -> Vec<cmx_sink_report> {
    let (mine, rest) = std::mem::take(&mut rig.mux.ctx.reports)
        .into_iter()
        .partition(|r| r.sink == sink);
    rig.mux.ctx.reports = rest;
    mine
}

fn detached(sink: usize) -> cmx_sink_report {
    cmx_sink_report {
        kind: cmx_sink_report_kind::Detached.into(),
        sink,
        ..cmx_sink_report::default()
    }
}

/// Item 9a: `cmx_mux_detach()` of a stalled `block` log returns at once;
/// the sink is DETACHING while its backlog drains, then DETACHED with one
/// report; `cmx_mux_release()` returns the final counters. A `drop` sink
/// is detached at once, its queue discarded and counted, and reported.
#[test]
fn detach_finishes_in_the_background_and_is_reported() {
    let cap = 16384;
    let cfg = Cfg::new(&[block(), block(), drop_sink()]).queue(cap);
    let mut rig = Rig::with_tiny_buffers(&cfg);
    let data = stream(1 << 20);
    rig.pump_all(&data[..100_000]);
    rig.pause(1, true);
    rig.pause(2, true);
    let accepted = 100_000 + rig.pump(&data[100_000..], STALL);
    assert!(rig.blocked, "the stalled log did not hold the writer");
    let backlog = rig.mux.detach(1).unwrap();
    assert!(backlog > 0);
    let st = rig.mux.stats(1);
    assert_eq!((st.state, st.queued), (DETACHING, backlog as u64), "{st:?}");
    assert!(
        take_reports(&mut rig, 1).is_empty(),
        "reported before it drained"
    );
    // The writer is free at once; the detached log gets no new output.
    assert!(rig.mux.ctx.woken > 0);
    rig.pump_all(&data[accepted..accepted + 50_000]);
    assert_eq!(rig.mux.stats(1).offered, st.offered);

    // A drop viewer is detached at once: its queue is discarded, counted.
    let before = rig.mux.stats(2);
    assert!(before.queued > 0, "{before:?}");
    assert_eq!(rig.mux.detach(2), Ok(0));
    let st2 = rig.mux.stats(2);
    assert_eq!(st2.state, DETACHED);
    assert_eq!(st2.dropped, before.dropped + before.queued);
    let reps = take_reports(&mut rig, 2);
    assert_eq!(reps.last(), Some(&detached(2)), "{reps:?}");

    // The log reads again: its backlog drains, then it is reported once.
    rig.pause(1, false);
    rig.drain();
    assert_eq!(rig.mux.stats(1).state, DETACHED);
    assert_eq!(take_reports(&mut rig, 1), [detached(1)]);
    let last = rig.mux.release(1).unwrap();
    assert_eq!(
        (last.state, last.queued, last.dropped, last.delivered),
        (DETACHED, 0, 0, accepted as u64),
        "{last:?}"
    );
    assert_bytes_eq("detached log", rig.received(1), &data[..accepted]);
    rig.mux.release(2).unwrap();
    assert!(rig.mux.ctx.reports.is_empty(), "{:?}", rig.mux.ctx.reports);
    rig.pump_all(&data[accepted + 50_000..]);
    rig.drain();
    assert_bytes_eq("log", rig.received(0), &data);
}

/// Item 9a: a sink being detached that closes (or fails) is detached
/// then, its backlog discarded and counted; a closed sink is detached at
/// once.
#[test]
fn a_detaching_sink_that_closes_or_fails_is_detached_then() {
    for fail in [false, true] {
        let cfg =
            Cfg::new(&[block(), block(), sink(cmx_overflow::Block, false, false)]).queue(8192);
        let mut rig = Rig::with_tiny_buffers(&cfg);
        let data = stream(1 << 20);
        rig.pause(1, true);
        rig.pump(&data, STALL);
        assert!(rig.mux.detach(1).unwrap() > 0);
        if fail {
            // The viewer goes away: the next write fails with EPIPE.
            rig.hang_up(1);
            rig.mux.sink_writable(1);
        } else {
            assert_eq!(rig.mux.event(1, cmx_sink_event::Closed), cmx_result::Ok);
        }
        let st = rig.mux.stats(1);
        assert_eq!((st.state, st.queued), (DETACHED, 0), "{st:?}");
        assert_balanced("detached", &st);
        let reps = take_reports(&mut rig, 1);
        let kinds: Vec<_> = reps.iter().map(kind).collect();
        if fail {
            assert_eq!(
                kinds,
                [cmx_sink_report_kind::Failed, cmx_sink_report_kind::Detached]
            );
            assert_eq!(reps[0].errnum, libc::EPIPE);
        } else {
            assert_eq!(kinds, [cmx_sink_report_kind::Detached]);
        }
        // A closed sink has nothing to write: detached at once.
        assert_eq!(rig.mux.detach(2), Ok(0));
        assert_eq!(take_reports(&mut rig, 2), [detached(2)]);
        assert_eq!(rig.mux.stats(2).state, DETACHED);
    }
}

/// Item 9b: a `drop` viewer that stalls reports that it started dropping
/// (with its unit and the bytes dropped so far), and when it has caught up
/// that it stopped (with the episode's bytes and the total); each episode
/// once, and the counts agree with its statistics.
#[test]
fn a_drop_viewer_reports_when_it_starts_and_stops_dropping() {
    let lines = cmx_sink_config {
        drop_unit: cmx_drop_unit::Lines as u32,
        ..drop_sink()
    };
    let cfg = Cfg::new(&[block(), lines]).queue(4096);
    let mut rig = Rig::with_tiny_buffers(&cfg);
    let data = stream(9 * 60_000);
    let third = 9 * 20_000;
    let mut episodes = Vec::new();
    for (k, part) in data.chunks(third).enumerate() {
        rig.pause(1, true);
        rig.pump_all(part);
        let st = rig.mux.stats(1);
        let reps = take_reports(&mut rig, 1);
        assert_eq!(reps.len(), 1, "episode {k}: {reps:?}");
        let started = reps[0];
        assert_eq!(kind(&started), cmx_sink_report_kind::DropStarted);
        assert_eq!(started.drop_unit, cmx_drop_unit::Lines as u32);
        let before: u64 = episodes.iter().sum();
        assert!(started.dropped > before && started.dropped <= st.dropped);
        rig.pause(1, false);
        rig.drain();
        let caught_up = rig.mux.stats(1);
        let stops = take_reports(&mut rig, 1);
        assert_eq!(stops.len(), 1, "episode {k}: {stops:?}");
        let stopped = stops[0];
        assert_eq!(kind(&stopped), cmx_sink_report_kind::DropStopped);
        assert_eq!(stopped.dropped, caught_up.dropped);
        assert_eq!(stopped.episode, caught_up.dropped - before);
        episodes.push(stopped.episode);
        assert_eq!(caught_up.drop_episodes, k as u64 + 1);
    }
    assert!(take_reports(&mut rig, 0).is_empty(), "the log dropped");
    assert_eq!(rig.mux.counters().reports_lost, 0);
}

/// Item 9b: a failure is reported once, with its errno; the sink stays
/// failed (receives nothing, never blocks, counts what it misses) until it
/// opens again, and a second failure after that is reported again.
#[test]
fn a_failure_is_reported_once_and_lasts_until_the_sink_opens_again() {
    let cfg = Cfg::new(&[block(), block()]).queue(4096);
    let mut rig = Rig::new(&cfg);
    let data = stream(300_000);
    rig.pump_all(&data[..1000]);
    rig.drain();
    rig.hang_up(1);
    rig.pump_all(&data[1000..100_000]);
    let st = rig.mux.stats(1);
    assert_eq!(
        (st.state, st.last_errno, st.write_errors),
        (FAILED, libc::EPIPE, 1)
    );
    let reps = take_reports(&mut rig, 1);
    assert_eq!(reps.len(), 1, "{reps:?}");
    assert_eq!(
        (kind(&reps[0]), reps[0].errnum),
        (cmx_sink_report_kind::Failed, libc::EPIPE)
    );
    // Still failed: never blocks, never written, not reported again.
    let calls = rig.mux.ctx.write_calls;
    rig.pump_all(&data[100_000..200_000]);
    assert_eq!(rig.mux.stats(1).state, FAILED);
    assert!(take_reports(&mut rig, 1).is_empty());
    rig.drain();
    assert!(rig.mux.ctx.write_calls > calls, "the log stopped");
    // It opens again (a new viewer): open, written, and a new failure is new.
    rig.close_ours(1);
    rig.attach(1);
    assert_eq!(rig.mux.event(1, cmx_sink_event::Opened), cmx_result::Ok);
    rig.pump_all(&data[200_000..250_000]);
    rig.drain();
    assert_eq!(rig.mux.stats(1).state, OPEN);
    assert_bytes_eq("reopened", rig.received(1), &data[200_000..250_000]);
    rig.hang_up(1);
    rig.pump_all(&data[250_000..]);
    let again = take_reports(&mut rig, 1);
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(kind(&again[0]), cmx_sink_report_kind::Failed);
    assert_eq!(rig.mux.stats(1).write_errors, 2);
    rig.drain();
    assert_bytes_eq("log", rig.received(0), &data);
}

/// Item 9c: what the frontend offered and was refused is counted per
/// multiplexer: every `WOULD_BLOCK` refuses the whole offer, a write
/// accepted in part refuses the rest; offered = accepted + refused.
#[test]
fn refusals_of_the_frontend_are_counted() {
    let cap = 4096;
    let mut m = Mux::new(&Cfg::new(&[block(), block()]).queue(cap)).unwrap();
    // Sinks that never drain: the write ends of pipes nobody reads,
    // non-blocking.
    let mut keep = Vec::new();
    for i in 0..2 {
        let (r, w) = pipe();
        set_nonblocking(w.as_raw_fd(), true);
        m.ctx.fds[i] = w.as_raw_fd();
        keep.push((r, w));
    }
    let data = vec![b'x'; 8 * 65536];
    let (mut offered, mut accepted, mut refused, mut refusals) = (0u64, 0u64, 0u64, 0u64);
    let mut would_blocks = 0;
    for chunk in data.chunks(3000) {
        let (r, acc) = m.write(chunk);
        offered += chunk.len() as u64;
        match r {
            cmx_result::Ok => {
                accepted += acc as u64;
                if acc < chunk.len() {
                    refused += (chunk.len() - acc) as u64;
                    refusals += 1;
                }
            }
            cmx_result::WouldBlock => {
                would_blocks += 1;
                refused += chunk.len() as u64;
                refusals += 1;
            }
            r => panic!("{r:?}"),
        }
    }
    assert!(would_blocks > 0 && accepted > 0);
    let c = m.counters();
    assert_eq!(
        (
            c.frontend_offered,
            c.frontend_accepted,
            c.frontend_refused_bytes,
            c.frontend_refusals
        ),
        (offered, accepted, refused, refusals),
        "{c:?}"
    );
    assert_eq!(
        c.frontend_offered,
        c.frontend_accepted + c.frontend_refused_bytes
    );
    assert_eq!(c.reports_lost, 0);
}
