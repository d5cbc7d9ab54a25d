//! The C ABI's promises at its edges: NULL pointers, bad indexes and event
//! values, re-entrant calls, bad configurations, result strings.

mod harness;

use std::collections::HashSet;
use std::ffi::{c_void, CStr};
use std::ptr::{null, null_mut};

use harness::*;

const NULLP: cmx_result = cmx_result::NullParameter;

fn two_sinks() -> Mux {
    Mux::new(&Cfg::new(&[block(), sink(cmx_overflow::Block, true, true)])).unwrap()
}

#[test]
fn null_pointers_give_null_parameter() {
    let cfg = Cfg::new(&[block()]);
    let c = cfg.as_c();
    let cb = callbacks();
    let mut ctx = Ctx::default();
    let opaque = &mut ctx as *mut Ctx as *mut c_void;
    let dangling = std::ptr::NonNull::<cmx_mux>::dangling().as_ptr();
    // SAFETY: every pointer is NULL or valid for the call (whole block).
    unsafe {
        let mut out = dangling;
        assert_eq!(cmx_mux_new(null(), &cb, opaque, &mut out), NULLP);
        assert!(out.is_null(), "*out not set to NULL");
        let mut out = dangling;
        assert_eq!(cmx_mux_new(&c, null(), opaque, &mut out), NULLP);
        assert!(out.is_null());
        assert_eq!(cmx_mux_new(&c, &cb, opaque, null_mut()), NULLP);
        // A sink array that is NULL while n_sinks says 2.
        let mut bad = c;
        bad.sinks = null();
        bad.n_sinks = 2;
        let mut out = dangling;
        assert_eq!(cmx_mux_new(&bad, &cb, opaque, &mut out), NULLP);
        assert!(out.is_null());
        // opaque may be NULL: it is never dereferenced by the library, and
        // the frontend callbacks are optional.
        let nocb = cmx_callbacks {
            sink_write: Some(cb_sink_write),
            sink_watch: Some(cb_sink_watch),
            frontend_writable: None,
            frontend_input: None,
            frontend_event: None,
        };
        let mut out = dangling;
        assert_eq!(cmx_mux_new(&c, &nocb, null_mut(), &mut out), cmx_result::Ok);
        assert_eq!(cmx_mux_free(out), cmx_result::Ok);
    }

    let m = two_sinks();
    let mut size = 0usize;
    let mut st = cmx_sink_stats::default();
    let mut open = false;
    // SAFETY: every pointer is NULL or valid for the call (whole block).
    unsafe {
        // A NULL multiplexer.
        assert_eq!(
            cmx_mux_write(null_mut(), b"x".as_ptr(), 1, &mut size),
            NULLP
        );
        assert_eq!(cmx_mux_write_room(null(), &mut size), NULLP);
        assert_eq!(cmx_mux_sink_writable(null_mut(), 0), NULLP);
        assert_eq!(cmx_mux_sink_event(null_mut(), 0, 0), NULLP);
        assert_eq!(cmx_mux_input_room(null(), 0, 1, &mut size), NULLP);
        assert_eq!(
            cmx_mux_input(null_mut(), 0, b"x".as_ptr(), 1, 1, &mut size),
            NULLP
        );
        assert_eq!(cmx_mux_sink_stats(null(), 0, &mut st), NULLP);
        assert_eq!(cmx_mux_frontend_open(null(), &mut open, null_mut()), NULLP);
        assert_eq!(
            cmx_mux_free(null_mut()),
            cmx_result::Ok,
            "free(NULL) is a no-op"
        );

        // NULL out-parameters and data.
        assert_eq!(cmx_mux_write(m.raw, b"x".as_ptr(), 1, null_mut()), NULLP);
        size = 7;
        assert_eq!(cmx_mux_write(m.raw, null(), 1, &mut size), NULLP);
        assert_eq!(cmx_mux_write_room(m.raw, null_mut()), NULLP);
        assert_eq!(cmx_mux_input_room(m.raw, 0, 1, null_mut()), NULLP);
        assert_eq!(
            cmx_mux_input(m.raw, 1, b"x".as_ptr(), 1, 1, null_mut()),
            NULLP
        );
        assert_eq!(cmx_mux_input(m.raw, 1, null(), 1, 1, &mut size), NULLP);
        assert_eq!(cmx_mux_sink_stats(m.raw, 0, null_mut()), NULLP);
        assert_eq!(cmx_mux_frontend_open(m.raw, null_mut(), null_mut()), NULLP);

        // NULL data with length 0 is fine.
        size = 7;
        assert_eq!(cmx_mux_write(m.raw, null(), 0, &mut size), cmx_result::Ok);
        assert_eq!(size, 0);
        size = 7;
        assert_eq!(
            cmx_mux_input(m.raw, 1, null(), 0, 5, &mut size),
            cmx_result::Ok
        );
        assert_eq!(size, 0);
        // n_sinks may be NULL.
        assert_eq!(
            cmx_mux_frontend_open(m.raw, &mut open, null_mut()),
            cmx_result::Ok
        );
    }
    assert!(m.ctx.guest.borrow().is_empty());
    assert_eq!(m.ctx.write_calls.get(), 0, "nothing was written");
}

#[test]
fn bad_sink_indexes_give_invalid_sink() {
    let m = two_sinks();
    let mut size = 0usize;
    let mut st = cmx_sink_stats::default();
    for bad in [2usize, 8, 9, usize::MAX] {
        // SAFETY: live mux, valid pointers (whole block).
        unsafe {
            assert_eq!(cmx_mux_sink_writable(m.raw, bad), cmx_result::InvalidSink);
            for ev in [
                cmx_sink_event::Opened,
                cmx_sink_event::Closed,
                cmx_sink_event::Break,
            ] {
                assert_eq!(
                    cmx_mux_sink_event(m.raw, bad, ev as u32),
                    cmx_result::InvalidSink
                );
            }
            assert_eq!(
                cmx_mux_input_room(m.raw, bad, 5, &mut size),
                cmx_result::InvalidSink
            );
            assert_eq!(
                cmx_mux_input(m.raw, bad, b"abc".as_ptr(), 3, 5, &mut size),
                cmx_result::InvalidSink
            );
            assert_eq!(size, 0, "consumed must be 0 on failure");
            assert_eq!(
                cmx_mux_sink_stats(m.raw, bad, &mut st),
                cmx_result::InvalidSink
            );
        }
    }
    assert!(m.ctx.guest.borrow().is_empty());
    // The mux still works.
    assert_eq!(m.stats(1).state, OPEN);
}

#[test]
fn bad_event_values_give_invalid_event() {
    let m = two_sinks();
    for bad in [3u32, 7, 100, u32::MAX] {
        // SAFETY: live mux.
        let r = unsafe { cmx_mux_sink_event(m.raw, 0, bad) };
        assert_eq!(r, cmx_result::InvalidEvent, "event {bad}");
    }
    assert_eq!(m.stats(0).state, OPEN);
    assert_eq!(
        m.ctx.events.borrow().len(),
        1,
        "only the OPENED from creation"
    );
}

#[test]
fn calls_from_inside_a_callback_are_refused_as_reentrant() {
    ignore_sigpipe();
    let mut m = two_sinks();
    let (ours, _theirs) = socketpair();
    let (ours1, _theirs1) = socketpair();
    m.ctx.fds.borrow_mut()[0] = std::os::fd::AsRawFd::as_raw_fd(&ours);
    m.ctx.fds.borrow_mut()[1] = std::os::fd::AsRawFd::as_raw_fd(&ours1);

    m.ctx.reenter.set(Some(m.raw));
    assert_eq!(m.write(b"hello"), (cmx_result::Ok, 5));
    m.ctx.reenter.set(None);
    let results = m.ctx.reenter_results.borrow().clone();
    assert_eq!(
        results.len(),
        12,
        "two sink writes, six calls each: {results:?}"
    );
    for (what, r) in &results {
        assert_eq!(
            *r,
            cmx_result::ReentrantCall,
            "{what} from inside sink_write"
        );
    }
    // None of them had an effect, and the mux is usable afterwards.
    for i in 0..2 {
        let st = m.stats(i);
        assert_eq!((st.state, st.offered, st.delivered), (OPEN, 5, 5));
    }
    assert_eq!(m.write(b"again"), (cmx_result::Ok, 5));
    assert_eq!(m.stats(0).delivered, 10);
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
                    input: false,
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
    let mut cb = callbacks();
    cb.sink_write = None;
    match Mux::with_callbacks(&Cfg::new(&[b]), &cb) {
        Ok(_) => panic!("NULL sink_write accepted"),
        Err(r) => assert_eq!(r, cmx_result::ConfigNoWriteCallback),
    }
    let mut cb = callbacks();
    cb.sink_watch = None;
    match Mux::with_callbacks(&Cfg::new(&[b]), &cb) {
        Ok(_) => panic!("NULL sink_watch accepted"),
        Err(r) => assert_eq!(r, cmx_result::ConfigNoWatchCallback),
    }

    // The limits themselves are accepted.
    assert!(Mux::new(&Cfg::new(&[b; CMX_MAX_SINKS])).is_ok());
    assert!(Mux::new(&Cfg::new(&[b]).queue(1).replay(1)).is_ok());
    assert!(Mux::new(&Cfg::new(&[b]).queue(1000).replay(1000)).is_ok());
}

#[test]
fn result_strings_are_non_empty_and_distinct() {
    let text = |r: u32| {
        let p = cmx_result_str(r);
        assert!(!p.is_null());
        // SAFETY: documented as a static NUL-terminated string.
        unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned()
    };
    let mut seen = HashSet::new();
    let all = [
        cmx_result::Ok,
        cmx_result::NullParameter,
        cmx_result::Panic,
        cmx_result::WouldBlock,
        cmx_result::ReentrantCall,
        cmx_result::InvalidSink,
        cmx_result::InvalidEvent,
        cmx_result::ConfigNoSinks,
        cmx_result::ConfigTooManySinks,
        cmx_result::ConfigMultipleInputs,
        cmx_result::ConfigZeroQueue,
        cmx_result::ConfigQueueTooLarge,
        cmx_result::ConfigReplayTooLarge,
        cmx_result::ConfigUnknownOverflow,
        cmx_result::ConfigNoWriteCallback,
        cmx_result::ConfigNoWatchCallback,
        cmx_result::ConfigCoalesceTooLong,
    ];
    assert_eq!(all.len(), cmx_result::ALL.len());
    for r in all {
        let s = text(r as u32);
        assert!(!s.trim().is_empty(), "{r:?}");
        assert!(seen.insert(s.clone()), "{r:?} shares its text {s:?}");
    }
    let unknown = text(7);
    assert_eq!(unknown, "unknown cmx_result value");
    assert!(!seen.contains(&unknown));
    assert_eq!(text(u32::MAX), unknown);
    assert_eq!(text(99), unknown);
}

#[test]
fn version_is_the_crate_version() {
    // SAFETY: a static NUL-terminated string.
    let v = unsafe { CStr::from_ptr(cmx_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn write_callback_claiming_more_than_offered_fails_the_sink() {
    unsafe extern "C" fn liar(_: *mut c_void, _: usize, _: *const u8, len: usize) -> isize {
        len as isize + 1
    }
    let mut cb = callbacks();
    cb.sink_write = Some(liar);
    let mut m = Mux::with_callbacks(&Cfg::new(&[block(), block()]), &cb).unwrap();
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
fn write_callback_returning_eintr_is_retried() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    unsafe extern "C" fn flaky(_: *mut c_void, _: usize, _: *const u8, len: usize) -> isize {
        if CALLS.fetch_add(1, Ordering::Relaxed) % 3 < 2 {
            -(libc::EINTR as isize)
        } else {
            len as isize
        }
    }
    let mut cb = callbacks();
    cb.sink_write = Some(flaky);
    let mut m = Mux::with_callbacks(&Cfg::new(&[block()]), &cb).unwrap();
    assert_eq!(m.write(b"abc"), (cmx_result::Ok, 3));
    let st = m.stats(0);
    assert_eq!(
        (st.state, st.delivered, st.queued, st.write_errors),
        (OPEN, 3, 0, 0)
    );
    assert_eq!(CALLS.load(Ordering::Relaxed), 3);
}
