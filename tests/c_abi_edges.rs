//! The C ABI's promises at its edges: NULL pointers, bad indexes and event
//! values, bad configurations, reports of bytes that were not handed out,
//! what `cmx_mux_poll_transmit()` hands out, a caught panic, result strings
//! and enum values.

mod harness;

use std::collections::HashSet;
use std::ffi::CStr;
use std::fmt::Debug;
use std::ptr::{null, null_mut};

use harness::*;

const NULLP: cmx_result = cmx_result::NullParameter;

fn two_sinks() -> Mux {
    Mux::new(&Cfg::new(&[block(), sink(cmx_overflow::Block, true, true)])).unwrap()
}

/// Offers `data` with `cmx_mux_write()` and leaves what it queued for the
/// test to take with [`poll`] (the wrapper [`Mux::write`] would write it out).
#[track_caller]
fn queue(m: &Mux, data: &[u8]) {
    let mut acc = 0;
    // SAFETY: live mux, valid buffers.
    let r = unsafe { cmx_mux_write(m.raw, data.as_ptr(), data.len(), &mut acc) };
    assert_eq!((r, acc), (cmx_result::Ok, data.len()));
}

/// `cmx_mux_poll_transmit()`, and a copy of the bytes it handed out.
#[track_caller]
fn poll(m: &Mux) -> (cmx_transmit, Vec<u8>) {
    let mut t = cmx_transmit {
        sink: usize::MAX,
        data: null(),
        len: usize::MAX,
    };
    // SAFETY: live mux, writable out.
    let polled = unsafe { cmx_mux_poll_transmit(m.raw, &mut t) };
    assert_eq!(polled, cmx_result::Ok);
    let bytes = if t.len == 0 {
        assert!(t.data.is_null());
        Vec::new()
    } else {
        // SAFETY: valid for `len` bytes until the next call on the mux.
        unsafe { std::slice::from_raw_parts(t.data, t.len) }.to_vec()
    };
    (t, bytes)
}

fn transmitted(m: &Mux, sink: usize, result: isize) -> cmx_result {
    // SAFETY: live mux.
    unsafe { cmx_mux_transmitted(m.raw, sink, result) }
}

/// Calls every `cmx_mux_*` function but `new` and `free` on `p` with valid
/// arguments (as far as `p` goes), asserts that each returned `want` and
/// that nothing was handed out.
///
/// # Safety
/// `p` is NULL or a live multiplexer with two sinks.
#[track_caller]
unsafe fn assert_every_call_returns(p: *mut cmx_mux, want: cmx_result) {
    let mut size = 7usize;
    let mut st = cmx_sink_stats::default();
    let (mut open, mut mask, mut pending, mut at) = (false, 7u32, true, 7u64);
    let mut ev = cmx_frontend_event::Break;
    let mut t = cmx_transmit {
        sink: 7,
        data: b"x".as_ptr(),
        len: 7,
    };
    let mut report = cmx_sink_report {
        kind: 7,
        ..cmx_sink_report::default()
    };
    let mut counters = cmx_mux_counters {
        frontend_offered: 7,
        ..cmx_mux_counters::default()
    };
    let x = b"x".as_ptr();
    let closed = cmx_sink_event::Closed.into();
    // SAFETY: `p` is NULL or live per the contract; the rest are valid.
    let results = unsafe {
        [
            ("write", cmx_mux_write(p, x, 1, &mut size)),
            ("write_at", cmx_mux_write_at(p, x, 1, 0, &mut size)),
            (
                "write_at_wall",
                cmx_mux_write_at_wall(p, x, 1, 0, 0, &mut size),
            ),
            ("write_room", cmx_mux_write_room(p, &mut size)),
            ("poll_transmit", cmx_mux_poll_transmit(p, &mut t)),
            ("transmitted", cmx_mux_transmitted(p, 0, 1)),
            ("watch_mask", cmx_mux_watch_mask(p, &mut mask)),
            ("sink_writable", cmx_mux_sink_writable(p, 0)),
            ("lossless_backlog", cmx_mux_lossless_backlog(p, &mut size)),
            ("sink_event", cmx_mux_sink_event(p, 0, closed)),
            ("poll_event", cmx_mux_poll_event(p, &mut ev)),
            ("input_room", cmx_mux_input_room(p, 1, 1, &mut size)),
            ("input", cmx_mux_input(p, 1, 1, 1, &mut size)),
            ("sink_stats", cmx_mux_sink_stats(p, 0, &mut st)),
            (
                "frontend_open",
                cmx_mux_frontend_open(p, &mut open, null_mut()),
            ),
            (
                "poll_timeout",
                cmx_mux_poll_timeout(p, &mut pending, &mut at),
            ),
            ("handle_timeout", cmx_mux_handle_timeout(p, 0)),
            ("poll_sink_report", cmx_mux_poll_sink_report(p, &mut report)),
            ("stats", cmx_mux_stats(p, &mut counters)),
            ("set_input", cmx_mux_set_input(p, 0)),
            ("clear_input", cmx_mux_clear_input(p)),
            ("attach", cmx_mux_attach(p, &block(), &mut size)),
            ("detach", cmx_mux_detach(p, 0, &mut size)),
            ("release", cmx_mux_release(p, 0, &mut st)),
            ("reset_head", cmx_mux_reset_head(p)),
            (
                "replay_export",
                cmx_mux_replay_export(p, null_mut(), 0, &mut size),
            ),
            ("replay_import", cmx_mux_replay_import(p, x, 1)),
        ]
    };
    for (what, r) in results {
        assert_eq!(r, want, "{what}");
    }
    // Out-parameters are written only on success.
    assert_eq!((t.len, ev, size), (7, cmx_frontend_event::Break, 7));
    assert_eq!((report.kind, counters.frontend_offered), (7, 7));
    assert_eq!(st, cmx_sink_stats::default());
}

#[test]
fn null_pointers_give_null_parameter() {
    let cfg = Cfg::new(&[block()]);
    let c = cfg.as_c();
    let dangling = std::ptr::NonNull::<cmx_mux>::dangling().as_ptr();
    // SAFETY: every pointer is NULL or valid for the call (whole block).
    unsafe {
        let mut out = dangling;
        assert_eq!(cmx_mux_new(null(), &mut out), NULLP);
        assert_eq!(out, dangling, "*out written on failure");
        assert_eq!(cmx_mux_new(&c, null_mut()), NULLP);
        // A sink array that is NULL while n_sinks says 2.
        let mut bad = c;
        bad.sinks = null();
        bad.n_sinks = 2;
        let mut out2 = dangling;
        assert_eq!(cmx_mux_new(&bad, &mut out2), NULLP);
        assert_eq!(out2, dangling);
        // free(NULL) is a no-op.
        cmx_mux_free(null_mut());
    }

    let m = two_sinks();
    let mut size = 0usize;
    let mut open = false;
    let mut at = 0u64;
    // SAFETY: every pointer is NULL or valid for the call (whole block).
    unsafe {
        // A NULL multiplexer.
        assert_every_call_returns(null_mut(), NULLP);

        // NULL out-parameters and data (poll_timeout's: c_abi_coalescing.rs).
        let p = m.raw;
        let x = b"x".as_ptr();
        for (what, r) in [
            ("write", cmx_mux_write(p, x, 1, null_mut())),
            ("write data", cmx_mux_write(p, null(), 1, &mut size)),
            (
                "write_at_wall",
                cmx_mux_write_at_wall(p, x, 1, 0, 0, null_mut()),
            ),
            (
                "write_at_wall data",
                cmx_mux_write_at_wall(p, null(), 1, 0, 0, &mut size),
            ),
            (
                "replay_export needed",
                cmx_mux_replay_export(p, null_mut(), 0, null_mut()),
            ),
            (
                "replay_export buffer",
                cmx_mux_replay_export(p, null_mut(), 1, &mut size),
            ),
            ("replay_import blob", cmx_mux_replay_import(p, null(), 1)),
            ("write_room", cmx_mux_write_room(p, null_mut())),
            ("poll_transmit", cmx_mux_poll_transmit(p, null_mut())),
            ("watch_mask", cmx_mux_watch_mask(p, null_mut())),
            ("lossless_backlog", cmx_mux_lossless_backlog(p, null_mut())),
            ("poll_event", cmx_mux_poll_event(p, null_mut())),
            ("input_room", cmx_mux_input_room(p, 0, 1, null_mut())),
            ("input", cmx_mux_input(p, 1, 1, 1, null_mut())),
            ("sink_stats", cmx_mux_sink_stats(p, 0, null_mut())),
            (
                "frontend_open",
                cmx_mux_frontend_open(p, null_mut(), null_mut()),
            ),
            ("poll_sink_report", cmx_mux_poll_sink_report(p, null_mut())),
            ("stats", cmx_mux_stats(p, null_mut())),
            ("attach", cmx_mux_attach(p, &block(), null_mut())),
            ("attach config", cmx_mux_attach(p, null(), &mut size)),
            (
                "poll_timeout pending",
                cmx_mux_poll_timeout(p, null_mut(), &mut at),
            ),
            (
                "poll_timeout deadline",
                cmx_mux_poll_timeout(p, &mut open, null_mut()),
            ),
        ] {
            assert_eq!(r, NULLP, "{what} with a NULL pointer");
        }

        // NULL data with length 0 is fine.
        size = 7;
        assert_eq!(cmx_mux_write(p, null(), 0, &mut size), cmx_result::Ok);
        assert_eq!(size, 0);
        // n_sinks may be NULL.
        assert_eq!(
            cmx_mux_frontend_open(p, &mut open, null_mut()),
            cmx_result::Ok
        );
        assert!(open);
    }
    // None of it queued or forwarded anything.
    assert_eq!(poll(&m).0.len, 0);
    for i in 0..2 {
        let st = m.stats(i);
        assert_eq!((st.state, st.offered, st.input_forwarded), (OPEN, 0, 0));
    }
}

#[test]
fn bad_sink_indexes_give_invalid_sink() {
    let mut m = two_sinks();
    let mut size = 0usize;
    let mut st = cmx_sink_stats::default();
    for bad in [2usize, 8, 9, usize::MAX] {
        // SAFETY: live mux, valid pointers (whole block).
        unsafe {
            assert_eq!(cmx_mux_sink_writable(m.raw, bad), cmx_result::InvalidSink);
            for ev in cmx_sink_event::ALL {
                assert_eq!(
                    cmx_mux_sink_event(m.raw, bad, (*ev).into()),
                    cmx_result::InvalidSink
                );
            }
            assert_eq!(
                cmx_mux_input_room(m.raw, bad, 5, &mut size),
                cmx_result::InvalidSink
            );
            size = 7;
            assert_eq!(
                cmx_mux_input(m.raw, bad, 3, 5, &mut size),
                cmx_result::InvalidSink
            );
            assert_eq!(size, 7, "*forward written on failure");
            assert_eq!(
                cmx_mux_sink_stats(m.raw, bad, &mut st),
                cmx_result::InvalidSink
            );
            assert_eq!(cmx_mux_transmitted(m.raw, bad, 1), cmx_result::InvalidSink);
        }
    }
    // The mux still works.
    assert_eq!(m.stats(1).state, OPEN);
    assert_eq!(m.input(1, b"ok", 5), 2);
    assert_eq!(m.ctx.guest, b"ok");
}

#[test]
fn bad_event_values_give_invalid_event() {
    let mut m = two_sinks();
    for bad in [3u32, 7, 100, u32::MAX] {
        // SAFETY: live mux.
        let r = unsafe { cmx_mux_sink_event(m.raw, 0, bad) };
        assert_eq!(r, cmx_result::InvalidEvent, "event {bad}");
    }
    m.settle();
    assert_eq!(m.stats(0).state, OPEN);
    assert_eq!(
        m.ctx.events,
        [cmx_frontend_event::Opened],
        "only the OPENED from creation"
    );
}

#[test]
fn transmitted_without_bytes_handed_out_is_not_offered() {
    let m = two_sinks();
    // Nothing queued, nothing handed out.
    assert_eq!(transmitted(&m, 0, 5), cmx_result::NotOffered);
    assert_eq!(
        transmitted(&m, 0, -(libc::EIO as isize)),
        cmx_result::NotOffered
    );
    // Queued but not handed out yet.
    queue(&m, b"hello");
    assert_eq!(transmitted(&m, 0, 5), cmx_result::NotOffered);
    let (t, bytes) = poll(&m);
    assert_eq!((t.sink, &bytes[..]), (0, &b"hello"[..]));
    // Sink 0's bytes are out, not sink 1's.
    assert_eq!(transmitted(&m, 1, 5), cmx_result::NotOffered);
    assert_eq!(transmitted(&m, 0, 5), cmx_result::Ok);
    // Reported already.
    assert_eq!(transmitted(&m, 0, 5), cmx_result::NotOffered);
    // None of the refused reports counted.
    let st = m.stats(0);
    assert_eq!(
        (st.state, st.delivered, st.queued, st.write_errors),
        (OPEN, 5, 0, 0)
    );
    let st1 = m.stats(1);
    assert_eq!(
        (st1.state, st1.delivered, st1.queued, st1.write_errors),
        (OPEN, 0, 5, 0)
    );
}

#[test]
fn a_report_for_a_sink_that_closed_after_its_bytes_were_handed_out_is_ignored() {
    let m = two_sinks();
    queue(&m, b"hello");
    let (t, _) = poll(&m);
    assert_eq!((t.sink, t.len), (0, 5));
    // Another sink's event leaves the bytes handed out valid and out.
    // SAFETY: live mux.
    let r = unsafe { cmx_mux_sink_event(m.raw, 1, cmx_sink_event::Closed.into()) };
    assert_eq!(r, cmx_result::Ok);
    // SAFETY: still valid: the only call since was a sink event for another sink.
    let handed_out = unsafe { std::slice::from_raw_parts(t.data, t.len) };
    assert_eq!(handed_out, b"hello");
    assert_eq!(transmitted(&m, 0, 2), cmx_result::Ok);
    assert_eq!(m.stats(0).delivered, 2);

    // Now sink 0's own bytes are out when it closes: the write that failed
    // (the viewer left) is reported after the close and ignored.
    let (t_own, own) = poll(&m);
    assert_eq!((t_own.sink, &own[..]), (0, &b"llo"[..]));
    // SAFETY: live mux.
    let closed = unsafe { cmx_mux_sink_event(m.raw, 0, cmx_sink_event::Closed.into()) };
    assert_eq!(closed, cmx_result::Ok);
    assert_eq!(transmitted(&m, 0, -(libc::EPIPE as isize)), cmx_result::Ok);
    // Those bytes are reported now: a second report is refused.
    assert_eq!(transmitted(&m, 0, 3), cmx_result::NotOffered);
    let st = m.stats(0);
    assert_eq!(
        (
            st.state,
            st.delivered,
            st.dropped,
            st.queued,
            st.write_errors,
            st.last_errno
        ),
        (CLOSED, 2, 3, 0, 0, 0),
        "{st:?}"
    );
    assert_balanced("closed sink", &st);
    assert_eq!(poll(&m).0.len, 0, "nothing left to write");
}

#[test]
fn poll_transmit_hands_out_the_front_of_the_queue_until_it_is_reported() {
    let m = Mux::new(&Cfg::new(&[block()]).queue(16)).unwrap();
    queue(&m, b"hello");
    let (t1, bytes) = poll(&m);
    assert_eq!((t1.sink, &bytes[..]), (0, &b"hello"[..]));
    // Asking again before reporting hands out the same bytes.
    let (t2, _) = poll(&m);
    assert_eq!((t2.data, t2.len), (t1.data, t1.len));
    // A partial write: the rest is the new front, in place (not a copy).
    assert_eq!(transmitted(&m, 0, 2), cmx_result::Ok);
    let (t3, rest) = poll(&m);
    assert_eq!(rest, b"llo");
    assert_eq!(t3.data, t1.data.wrapping_add(2));
    assert_eq!(transmitted(&m, 0, 1), cmx_result::Ok);

    // Filling the queue now (14 bytes after "lo") wraps its storage around:
    // what is handed out is still the queue in order, front first.
    let more = stream(14);
    queue(&m, &more);
    let mut out = Vec::new();
    loop {
        let (t, front) = poll(&m);
        if t.len == 0 {
            break;
        }
        assert!(t.len as u64 <= m.stats(0).queued);
        out.extend_from_slice(&front);
        assert_eq!(transmitted(&m, 0, t.len as isize), cmx_result::Ok);
    }
    assert_bytes_eq("handed out", &out, &[&b"lo"[..], &more].concat());
    let st = m.stats(0);
    assert_eq!((st.delivered, st.queued, st.queue_high_water), (19, 0, 16));
}

#[test]
fn each_bad_configuration_gives_its_code_and_a_null_mux() {
    let b = block();
    let cases: Vec<(&str, Cfg, cmx_result)> = vec![
        ("0 sinks", Cfg::new(&[]), cmx_result::ConfigNoSinks),
        ("9 sinks", Cfg::new(&[b; 9]), cmx_result::ConfigTooManySinks),
        (
            "two inputs",
            Cfg::new(&[
                sink(cmx_overflow::Block, true, true),
                sink(cmx_overflow::Drop, true, true),
            ]),
            cmx_result::ConfigMultipleInputs,
        ),
        (
            "zero queue",
            Cfg::new(&[b]).queue(0),
            cmx_result::ConfigZeroQueue,
        ),
        (
            "queue too large",
            Cfg::new(&[b]).queue(CMX_MAX_QUEUE_CAPACITY + 1),
            cmx_result::ConfigQueueTooLarge,
        ),
        (
            "replay larger than queue",
            Cfg::new(&[b]).queue(1000).replay(1001),
            cmx_result::ConfigReplayTooLarge,
        ),
        (
            "overflow 7",
            Cfg::new(&[
                b,
                cmx_sink_config {
                    overflow: 7,
                    open: true,
                    ..sink_defaults()
                },
            ]),
            cmx_result::ConfigUnknownOverflow,
        ),
    ];
    for (what, cfg, want) in cases {
        // Mux::new checks that *out is NULL on failure.
        match Mux::new(&cfg) {
            Ok(_) => panic!("{what}: accepted"),
            Err(r) => assert_eq!(r, want, "{what}"),
        }
    }
    // CONFIG_NO_WRITE_CALLBACK and CONFIG_NO_WATCH_CALLBACK are retired:
    // there are no callbacks to leave out.

    // A `size` that is not sizeof the struct: a header from another
    // version, or a size left 0.
    for bad in [0, 8, std::mem::size_of::<cmx_mux_config>() + 8] {
        let cfg = Cfg::new(&[b]);
        let mut c = cfg.as_c();
        c.size = bad;
        let mut out = std::ptr::NonNull::<cmx_mux>::dangling().as_ptr();
        // SAFETY: valid pointers for the call.
        let r = unsafe { cmx_mux_new(&c, &mut out) };
        assert_eq!(r, cmx_result::ConfigSizeMismatch, "mux config size {bad}");
        let sinks = [cmx_sink_config { size: bad, ..b }];
        let with_bad_sink = Cfg::new(&sinks);
        assert_eq!(
            Mux::new(&with_bad_sink).err(),
            Some(cmx_result::ConfigSizeMismatch),
            "sink config size {bad}"
        );
        let mut m = Mux::new(&Cfg::new(&[b])).unwrap();
        let mut k = 77usize;
        // SAFETY: live mux, valid pointers.
        let attached = unsafe { cmx_mux_attach(m.raw, &sinks[0], &mut k) };
        assert_eq!((attached, k), (cmx_result::ConfigSizeMismatch, 77));
        m.settle();
    }

    // The limits themselves are accepted.
    Mux::new(&Cfg::new(&[b; CMX_MAX_SINKS])).unwrap();
    Mux::new(&Cfg::new(&[b]).queue(1).replay(1)).unwrap();
    Mux::new(&Cfg::new(&[b]).queue(1000).replay(1000)).unwrap();
}

/// Queues that cannot be allocated (here: 8 of 64 MiB in a process whose
/// address space is limited) are refused with `CMX_RESULT_OUT_OF_MEMORY` and a
/// NULL multiplexer, not an abort of the process.
#[test]
fn queues_that_cannot_be_allocated_give_out_of_memory_not_an_abort() {
    const CHILD: &str = "CMX_TEST_OOM_CHILD";
    const NAME: &str = "queues_that_cannot_be_allocated_give_out_of_memory_not_an_abort";
    if std::env::var_os(CHILD).is_none() {
        // The address-space limit below holds for the whole process: run
        // this test alone in a child.
        let out = spawn_child(
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([NAME, "--exact", "--test-threads=1"])
                .env(CHILD, "1")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped()),
        )
        .wait_with_output()
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    // Room for 3 of the 8 queues of 64 MiB.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let vm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmSize");
    let limit = vm_kib * 1024 + 3 * CMX_MAX_QUEUE_CAPACITY as u64 + (16 << 20);
    let rl = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: a valid rlimit.
    check(
        unsafe { libc::setrlimit(libc::RLIMIT_AS, &rl) },
        "setrlimit",
    );
    let cfg = Cfg::new(&[block(); CMX_MAX_SINKS]).queue(CMX_MAX_QUEUE_CAPACITY);
    // Mux::new checks that *out is NULL on failure.
    assert_eq!(Mux::new(&cfg).err(), Some(cmx_result::OutOfMemory));
    // The queues allocated before the failure were given back: two fit again.
    Mux::new(&Cfg::new(&[block(); 2]).queue(CMX_MAX_QUEUE_CAPACITY)).unwrap();
}

/// A Rust panic inside an exported function is caught, reported as
/// `CMX_RESULT_PANIC` and poisons that multiplexer only; it does not abort the
/// process, and the multiplexer can still be freed.
///
/// The one panic a caller can cause without breaking a documented contract:
/// `cmx_mux_input()` takes `len` on trust and adds it to the sink's 64-bit
/// input counter, which overflows after 2^64 bytes claimed in all; a build
/// with overflow checks (this debug build) panics there. No test-only hook
/// is needed, but a release build wraps the counter instead.
#[test]
#[cfg(target_pointer_width = "64")]
#[cfg_attr(
    not(debug_assertions),
    ignore = "the counter overflow panics only with overflow checks (a debug build)"
)]
fn a_panic_inside_a_call_is_caught_and_poisons_only_that_multiplexer() {
    let bystander_cfg = Cfg::new(&[block()]);
    let mut bystander = Rig::new(&bystander_cfg);
    let m = two_sinks();
    let p = m.raw;
    let mut size = 7usize;
    // Sink 0 is not the input source: its input is discarded and counted.
    // SAFETY: live mux, writable out.
    let r = unsafe { cmx_mux_input(p, 0, usize::MAX, 0, &mut size) };
    assert_eq!((r, size), (cmx_result::Ok, 0));
    assert_eq!(m.stats(0).input_discarded, u64::MAX);
    // SAFETY: as above.
    let again = unsafe { cmx_mux_input(p, 0, 1, 0, &mut size) };
    assert_eq!(
        again,
        cmx_result::Panic,
        "the counter overflow was not a caught panic"
    );
    assert_eq!(size, 0);

    // Every later call on it is refused, the one that panicked too.
    // SAFETY: a live (poisoned) multiplexer with two sinks.
    unsafe {
        assert_every_call_returns(p, cmx_result::Panic);
    }
    // SAFETY: as above.
    let later = unsafe { cmx_mux_input(p, 0, 1, 0, &mut size) };
    assert_eq!(later, cmx_result::Panic);
    // The process goes on, and so does every other multiplexer.
    assert_eq!(bystander.mux.write(b"still here"), (cmx_result::Ok, 10));
    assert_eq!(bystander.collect(0), b"still here");
    // cmx_mux_free() still frees it (valgrind's leak check sees to that).
    drop(m);
}

#[test]
fn result_values_are_stable_and_strings_non_empty_and_distinct() {
    use cmx_result as R;
    let stable = [
        (R::Ok, 0),
        (R::NullParameter, 1),
        (R::Panic, 2),
        (R::WouldBlock, 3),
        (R::InvalidSink, 5),
        (R::InvalidEvent, 6),
        (R::NotOffered, 7),
        (R::OutOfMemory, 8),
        (R::SinkLimit, 9),
        (R::LastSink, 10),
        (R::BufferTooSmall, 11),
        (R::ReplayBlobMalformed, 12),
        (R::ReplayBlobVersion, 13),
        (R::ReplayBlobTooLarge, 14),
        (R::ReplayNotFresh, 15),
        (R::ConfigNoSinks, 100),
        (R::ConfigTooManySinks, 101),
        (R::ConfigMultipleInputs, 102),
        (R::ConfigZeroQueue, 103),
        (R::ConfigQueueTooLarge, 104),
        (R::ConfigReplayTooLarge, 105),
        (R::ConfigUnknownOverflow, 106),
        (R::ConfigCoalesceTooLong, 109),
        (R::ConfigUnknownDropUnit, 110),
        (R::ConfigNoticeOnBlockSink, 111),
        (R::ConfigSizeMismatch, 112),
        (R::ConfigReplayHeadTooLarge, 113),
    ];
    assert_enum(R::ALL, &stable);
    let text = |r: u32| {
        let p = cmx_result_str(r);
        assert!(!p.is_null());
        // SAFETY: documented as a static NUL-terminated string.
        unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned()
    };
    let mut seen = HashSet::new();
    for &r in R::ALL {
        let s = text(r.into());
        assert!(!s.trim().is_empty(), "{r:?}");
        assert!(seen.insert(s.clone()), "{r:?} shares its text {s:?}");
    }
    let unknown = text(16);
    assert_eq!(unknown, "unknown cmx_result value");
    assert!(!seen.contains(&unknown));
    for v in [4, 99, 107, 108, 114, u32::MAX] {
        assert_eq!(text(v), unknown);
    }
}

/// `all` is `want`'s values in order, and each converts to its number and back.
#[track_caller]
fn assert_enum<T>(all: &[T], want: &[(T, u32)])
where
    T: Copy + Debug + PartialEq + Into<u32> + TryFrom<u32, Error = u32>,
{
    let values: Vec<T> = want.iter().map(|w| w.0).collect();
    assert_eq!(all, values);
    for &(v, n) in want {
        assert_eq!(v.into(), n, "{v:?}");
        assert_eq!(T::try_from(n), Ok(v));
    }
    let unused = (0..).find(|n| want.iter().all(|w| w.1 != *n)).unwrap();
    for bad in [unused, u32::MAX] {
        assert_eq!(T::try_from(bad), Err(bad));
    }
}

#[test]
fn enum_values_are_stable_and_convert_both_ways() {
    use cmx_frontend_event as F;
    assert_enum(
        F::ALL,
        &[
            (F::None, 0),
            (F::Opened, 1),
            (F::Closed, 2),
            (F::Break, 3),
            (F::Writable, 4),
        ],
    );
    use cmx_sink_event as E;
    assert_enum(E::ALL, &[(E::Opened, 0), (E::Closed, 1), (E::Break, 2)]);
    use cmx_sink_state as S;
    assert_enum(
        S::ALL,
        &[
            (S::Open, 0),
            (S::Closed, 1),
            (S::Failed, 2),
            (S::Detaching, 3),
            (S::Detached, 4),
        ],
    );
    // The zero values are the safe ones (issue 17, item 8).
    use cmx_overflow as O;
    assert_enum(O::ALL, &[(O::Drop, 0), (O::Block, 1)]);
    use cmx_drop_unit as D;
    assert_enum(D::ALL, &[(D::Lines, 0), (D::Bytes, 1)]);
    use cmx_sink_report_kind as K;
    assert_enum(
        K::ALL,
        &[
            (K::None, 0),
            (K::DropStarted, 1),
            (K::DropStopped, 2),
            (K::Failed, 3),
            (K::Detached, 4),
        ],
    );
}

#[test]
fn version_is_the_crate_version() {
    // SAFETY: a static NUL-terminated string.
    let v = unsafe { CStr::from_ptr(cmx_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    let meson =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/meson.build")).unwrap();
    let want = format!("version: '{}',", env!("CARGO_PKG_VERSION"));
    assert!(
        meson.contains(&want),
        "meson.build's project() lacks {want}"
    );
}

#[test]
fn a_sink_said_to_take_more_than_it_was_handed_fails_with_einval() {
    fn liar(_: &mut Ctx, _: usize, data: &[u8]) -> isize {
        data.len() as isize + 1
    }
    let mut m = Mux::with_writer(&Cfg::new(&[block(), block()]), liar).unwrap();
    assert_eq!(m.write(b"abc"), (cmx_result::Ok, 3));
    for i in 0..2 {
        let st = m.stats(i);
        assert_eq!(
            (st.state, st.last_errno, st.write_errors),
            (FAILED, libc::EINVAL, 1)
        );
        assert_balanced("liar", &st);
    }
    // Failed sinks never block.
    assert_eq!(m.write_room(), usize::MAX);
}

#[test]
fn eintr_offers_the_same_bytes_again() {
    /// Two of every three writes are interrupted; each sees the same bytes.
    fn flaky(c: &mut Ctx, _: usize, data: &[u8]) -> isize {
        c.write_calls += 1;
        assert_eq!(data, b"abc");
        if c.write_calls % 3 == 0 {
            data.len() as isize
        } else {
            -(libc::EINTR as isize)
        }
    }
    let mut m = Mux::with_writer(&Cfg::new(&[block()]), flaky).unwrap();
    assert_eq!(m.write(b"abc"), (cmx_result::Ok, 3));
    let st = m.stats(0);
    assert_eq!(
        (st.state, st.delivered, st.queued, st.write_errors),
        (OPEN, 3, 0, 0)
    );
    assert_eq!(m.ctx.write_calls, 3);
    assert!(!m.ctx.watching[0], "EINTR is not a reason to wait");
}

/// Issue 17, item 2: one rule for out-parameters, stated in the header:
/// they are written only when the call returns `CMX_RESULT_OK`; on any
/// other result the caller's values are left as they were.
#[test]
fn outputs_are_written_only_on_success() {
    const S: usize = 0x5eed;
    let dangling = std::ptr::NonNull::<cmx_mux>::dangling().as_ptr();
    let t0 = cmx_transmit {
        sink: S,
        data: b"x".as_ptr(),
        len: S,
    };
    let st0 = cmx_sink_stats {
        offered: 77,
        ..cmx_sink_stats::default()
    };
    let same_transmit = |t: &cmx_transmit| (t.sink, t.data, t.len) == (t0.sink, t0.data, t0.len);
    // SAFETY: every pointer is NULL or valid for the call (whole block).
    unsafe {
        // cmx_mux_new() refusing a configuration.
        let none = Cfg::new(&[]);
        let mut out = dangling;
        assert_eq!(
            cmx_mux_new(&none.as_c(), &mut out),
            cmx_result::ConfigNoSinks
        );
        assert_eq!(out, dangling, "cmx_mux_new: *out written on failure");

        // A NULL multiplexer: every output stays.
        let p: *mut cmx_mux = null_mut();
        let (mut size, mut mask, mut open) = (S, 0x5eed_u32, true);
        let (mut pending, mut at) = (true, 0x5eed_u64);
        let mut ev = cmx_frontend_event::Break;
        let mut t = t0;
        let mut st = st0;
        let x = b"x".as_ptr();
        let results = [
            ("write", cmx_mux_write(p, x, 1, &mut size)),
            ("write_at", cmx_mux_write_at(p, x, 1, 0, &mut size)),
            (
                "write_at_wall",
                cmx_mux_write_at_wall(p, x, 1, 0, 0, &mut size),
            ),
            ("write_room", cmx_mux_write_room(p, &mut size)),
            ("poll_transmit", cmx_mux_poll_transmit(p, &mut t)),
            ("watch_mask", cmx_mux_watch_mask(p, &mut mask)),
            ("lossless_backlog", cmx_mux_lossless_backlog(p, &mut size)),
            ("poll_event", cmx_mux_poll_event(p, &mut ev)),
            ("input_room", cmx_mux_input_room(p, 1, 1, &mut size)),
            ("input", cmx_mux_input(p, 1, 1, 1, &mut size)),
            ("sink_stats", cmx_mux_sink_stats(p, 0, &mut st)),
            (
                "frontend_open",
                cmx_mux_frontend_open(p, &mut open, &mut size),
            ),
            (
                "poll_timeout",
                cmx_mux_poll_timeout(p, &mut pending, &mut at),
            ),
            ("attach", cmx_mux_attach(p, &block(), &mut size)),
            ("detach", cmx_mux_detach(p, 0, &mut size)),
            ("release", cmx_mux_release(p, 0, &mut st)),
            ("reset_head", cmx_mux_reset_head(p)),
            (
                "replay_export",
                cmx_mux_replay_export(p, null_mut(), 0, &mut size),
            ),
            ("replay_import", cmx_mux_replay_import(p, x, 1)),
        ];
        for (what, r) in results {
            assert_eq!(r, NULLP, "{what}");
        }
        assert_eq!(
            (size, mask, open, pending, at, ev),
            (S, 0x5eed, true, true, 0x5eed, cmx_frontend_event::Break),
            "an output was written by a call on a NULL multiplexer"
        );
        assert!(same_transmit(&t), "poll_transmit wrote {t:?}");
        assert_eq!(st.offered, 77, "sink_stats or release wrote {st:?}");
    }

    // A live multiplexer refusing a call.
    let mut m = Mux::new(&Cfg::new(&[block(), block()]).queue(4)).unwrap();
    // SAFETY: live mux, valid pointers (whole block).
    unsafe {
        let (mut size, mut st) = (S, st0);
        for (what, r) in [
            ("input", cmx_mux_input(m.raw, 9, 1, 1, &mut size)),
            ("input_room", cmx_mux_input_room(m.raw, 9, 1, &mut size)),
            ("sink_stats", cmx_mux_sink_stats(m.raw, 9, &mut st)),
            ("detach", cmx_mux_detach(m.raw, 9, &mut size)),
            ("release", cmx_mux_release(m.raw, 9, &mut st)),
            (
                "attach",
                cmx_mux_attach(
                    m.raw,
                    &cmx_sink_config {
                        overflow: 9,
                        ..block()
                    },
                    &mut size,
                ),
            ),
        ] {
            assert_ne!(r, cmx_result::Ok, "{what}");
        }
        assert_eq!((size, st.offered), (S, 77), "written on failure");
    }
    // WOULD_BLOCK: nothing accepted, and `*accepted` not written either.
    m.ctx.fds = vec![-1, -1];
    let mut acc = S;
    // SAFETY: live mux, valid buffers (whole block).
    unsafe {
        let mut r = cmx_result::Ok;
        for _ in 0..8 {
            acc = S;
            r = cmx_mux_write(m.raw, b"abcd".as_ptr(), 4, &mut acc);
            if r != cmx_result::Ok {
                break;
            }
        }
        assert_eq!(r, cmx_result::WouldBlock);
        assert_eq!(acc, S, "*accepted written on WOULD_BLOCK");
    }
}

/// Issue 17, item 5: retired result codes (4, 107, 108) are not in the
/// enum; they read as unknown values.
#[test]
fn retired_result_codes_are_unknown_values() {
    for retired in [4u32, 107, 108] {
        assert_eq!(cmx_result::try_from(retired), Err(retired));
        // SAFETY: a static NUL-terminated string.
        let text = unsafe { CStr::from_ptr(cmx_result_str(retired)) };
        assert_eq!(text.to_str().unwrap(), "unknown cmx_result value");
    }
}

/// Issue 17, item 8: a sink configuration that leaves the policy out (all
/// zero) is the safe one: `drop` in `lines` mode, which never holds the
/// frontend back, whatever its viewer does.
#[test]
fn a_zeroed_sink_configuration_drops_whole_lines_and_never_blocks() {
    // `{ .size = sizeof(cmx_sink_config), .open = true }` in C.
    let viewer = cmx_sink_config {
        open: true,
        ..sink_defaults()
    };
    let mut rig = Rig::new(&Cfg::new(&[viewer]).queue(64));
    rig.pause(0, true);
    // Whole records only, so that the stream ends with a newline.
    let data = stream(9 * 100_000);
    let accepted = rig.pump(&data, std::time::Duration::from_millis(100));
    assert_eq!(accepted, data.len(), "a zeroed sink held the frontend back");
    assert_eq!(rig.would_blocks, 0);
    let st = rig.mux.stats(0);
    assert_eq!(st.overflow, cmx_overflow::Drop as u32, "{st:?}");
    assert!(st.dropped > 0);
    rig.pause(0, false);
    rig.drain();
    // Whole 9-byte records only: lines mode.
    let got = rig.received(0).to_vec();
    for line in got.split_inclusive(|&b| b == b'\n') {
        assert_eq!(
            line.len(),
            9,
            "a cut line: {:?}",
            String::from_utf8_lossy(line)
        );
    }
}
