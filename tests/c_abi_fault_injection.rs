//! Fault injection through the C ABI over real fds: a viewer that disconnects
//! and reconnects 100 times mid-stream, sinks whose writes fail with ENOSPC
//! (a file on a full tmpfs, or injected), EIO, EPIPE (a pipe whose reader
//! process exits) and EINTR, short writes and spurious EAGAIN. After each,
//! the `block` sinks hold the byte-exact stream and every sink's counters add
//! up (`offered == delivered + queued + dropped`).
//!
//! Faults are injected by a write function that wraps the harness's
//! [`sink_write`] (what is reported to `cmx_mux_transmitted()`): a
//! per-thread plan per sink (each test drives its multiplexer from its own
//! thread, so thread-local state is per test).

mod harness;

use std::cell::RefCell;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::*;

// ---------------------------------------------------------------------------
// The fault-injecting write function
// ---------------------------------------------------------------------------

/// What to do to one sink's writes. Counters are in calls of the write
/// function and in bytes the sink really took.
#[derive(Clone, Copy, Debug, Default)]
struct Plan {
    /// Once the sink has taken this many bytes, every write fails with the
    /// errno (the write that crosses the limit is cut short at it).
    fail_after: Option<(usize, i32)>,
    /// Every n-th call returns -EINTR (the library offers the bytes again).
    eintr_every: u64,
    /// Every n-th call starts a run of this many -EINTR, more than the
    /// library offers again in a row, so that it waits for the sink's watch.
    eintr_burst: Option<(u64, u32)>,
    /// Every n-th call returns -EAGAIN although the fd is writable.
    eagain_every: u64,
    /// Every n-th call writes at most 1..=7 bytes.
    short_every: u64,
}

#[derive(Default)]
struct SinkFaults {
    plan: Plan,
    /// Bytes the sink took through this function.
    taken: usize,
    calls: u64,
    burst_left: u32,
    eintr: u64,
    eagain: u64,
    short: u64,
    errors: u64,
}

thread_local! {
    static FAULTS: RefCell<Vec<SinkFaults>> = const { RefCell::new(Vec::new()) };
}

fn set_plan(sink: usize, plan: Plan) {
    FAULTS.with(|f| {
        let mut f = f.borrow_mut();
        while f.len() <= sink {
            f.push(SinkFaults::default());
        }
        f[sink].plan = plan;
    });
}

fn clear_plans() {
    FAULTS.with(|f| f.borrow_mut().clear());
}

fn faults<T>(sink: usize, get: impl FnOnce(&SinkFaults) -> T) -> T {
    FAULTS.with(|f| get(&f.borrow()[sink]))
}

enum Action {
    Fail(i32),
    Write(usize),
}

fn faulty_write(ctx: &mut Ctx, sink: usize, data: &[u8]) -> isize {
    let action = FAULTS.with(|f| {
        let mut f = f.borrow_mut();
        let Some(s) = f.get_mut(sink) else {
            return Action::Write(data.len());
        };
        s.calls += 1;
        let p = s.plan;
        if let Some((limit, errno)) = p.fail_after {
            if s.taken >= limit {
                s.errors += 1;
                return Action::Fail(errno);
            }
        }
        if s.burst_left > 0 {
            s.burst_left -= 1;
            s.eintr += 1;
            return Action::Fail(libc::EINTR);
        }
        if let Some((every, run)) = p.eintr_burst {
            if s.calls % every == 0 {
                s.burst_left = run - 1;
                s.eintr += 1;
                return Action::Fail(libc::EINTR);
            }
        }
        if p.eintr_every > 0 && s.calls % p.eintr_every == 0 {
            s.eintr += 1;
            return Action::Fail(libc::EINTR);
        }
        if p.eagain_every > 0 && s.calls % p.eagain_every == 0 {
            s.eagain += 1;
            return Action::Fail(libc::EAGAIN);
        }
        let mut n = data.len();
        if p.short_every > 0 && s.calls % p.short_every == 0 && n > 1 {
            s.short += 1;
            n = n.min(1 + (s.calls % 7) as usize);
        }
        if let Some((limit, _)) = p.fail_after {
            n = n.min(limit - s.taken);
        }
        Action::Write(n)
    });
    match action {
        Action::Fail(e) => -(e as isize),
        Action::Write(n) => {
            let r = sink_write(ctx, sink, &data[..n]);
            if r > 0 {
                FAULTS.with(|f| {
                    if let Some(s) = f.borrow_mut().get_mut(sink) {
                        s.taken += r as usize;
                    }
                });
            }
            r
        }
    }
}

/// A rig whose sinks all go through [`faulty_write`], with empty plans.
fn faulty_rig(cfg: &Cfg) -> Rig {
    clear_plans();
    for i in 0..cfg.sinks.len() {
        set_plan(i, Plan::default());
    }
    Rig::with_writer(cfg, faulty_write)
}

#[track_caller]
fn assert_all_balanced(rig: &Rig) {
    for i in 0..rig.mux.n_sinks() {
        assert_balanced(&format!("sink {i}"), &rig.mux.stats(i));
    }
}

#[track_caller]
fn assert_exact(rig: &Rig, sinks: &[usize], data: &[u8]) {
    for &i in sinks {
        assert_bytes_eq(&format!("block sink {i}"), rig.received(i), data);
        let st = rig.mux.stats(i);
        assert_eq!(
            (
                st.state,
                st.offered,
                st.delivered,
                st.queued,
                st.dropped,
                st.write_errors
            ),
            (OPEN, data.len() as u64, data.len() as u64, 0, 0, 0),
            "block sink {i}: {st:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// A viewer that disconnects and reconnects while the stream flows
// ---------------------------------------------------------------------------

/// How a viewer connection ends.
#[derive(Clone, Copy, Debug, PartialEq)]
enum HangUp {
    /// The backend notices the hang-up first: CLOSED, nothing is written to
    /// the dead connection.
    Orderly,
    /// Output is written to the dead connection first: EPIPE, the sink fails,
    /// then the backend reports CLOSED.
    Abrupt,
    /// The viewer stops reading, the queue fills (and for `drop`
    /// overflows), then it goes away: what was queued is dropped.
    WhileStalled,
}

/// One viewer connection: the stream offset where it connected, how it
/// ended, and what it received.
type Connection = (usize, HangUp, Vec<u8>);

/// Streams `len` bytes while the viewer (sink 1, `viewer` policy, replay
/// `replay`) connects and disconnects `cycles` times; sink 0 is a `block`
/// log. Returns the rig, the stream and what each connection received.
fn flapping_viewer(
    viewer: cmx_sink_config,
    queue: usize,
    replay: usize,
    cycles: usize,
    len: usize,
) -> (Rig, Vec<u8>, Vec<Connection>) {
    let start = Instant::now();
    let cfg = Cfg::new(&[block(), viewer]).queue(queue).replay(replay);
    let viewer_blocks = viewer.overflow == cmx_overflow::Block as u32;
    let mut rig = Rig::new(&cfg);
    rig.chunks = Chunks::random(1500);
    // The viewer's connections get the smallest socket buffers, so that a
    // viewer that stops reading soon has a queue.
    let shrink = |r: &Rig| {
        shrink_socket_buffers(r.ours[1].as_ref().unwrap().as_raw_fd());
        shrink_socket_buffers(r.peer(1).fd.as_raw_fd());
    };
    shrink(&rig);
    let data = stream(len);
    let step = len / cycles;
    let mut pos = 0;
    let mut conns = Vec::new();
    for k in 0..cycles {
        let mut end = if k + 1 == cycles { len } else { pos + step };
        let third = (end - pos) / 3;
        let how = [HangUp::Orderly, HangUp::Abrupt, HangUp::WhileStalled][k % 3];
        if k > 0 {
            // A new viewer connects.
            rig.close_ours(1);
            rig.attach(1);
            shrink(&rig);
            assert_eq!(rig.mux.event(1, cmx_sink_event::Opened), cmx_result::Ok);
        }
        let connected_at = pos;
        rig.pump_all(&data[pos..pos + third]);
        pos += third;
        rig.collect(1);
        match how {
            HangUp::Orderly => {
                rig.drain();
                rig.collect(1);
                let got = rig.hang_up(1);
                rig.close_ours(1);
                assert_eq!(rig.mux.event(1, cmx_sink_event::Closed), cmx_result::Ok);
                conns.push((connected_at, how, got));
            }
            HangUp::Abrupt => {
                rig.drain();
                rig.collect(1);
                let got = rig.hang_up(1);
                // Output goes on; a write to the dead connection fails.
                rig.pump_all(&data[pos..pos + third]);
                pos += third;
                let st = rig.mux.stats(1);
                assert_eq!(
                    (st.state, st.last_errno),
                    (FAILED, libc::EPIPE),
                    "cycle {k}: {st:?}"
                );
                rig.close_ours(1);
                assert_eq!(rig.mux.event(1, cmx_sink_event::Closed), cmx_result::Ok);
                conns.push((connected_at, how, got));
            }
            HangUp::WhileStalled => {
                rig.pause(1, true);
                // A stalled block viewer holds the writer up: write until it
                // does, and hang up while the writer is blocked. A drop
                // viewer holds nothing up: write the rest of the cycle.
                let until = if viewer_blocks { len } else { end };
                let n = rig.pump(&data[pos..until], Duration::from_millis(5));
                pos += n;
                if viewer_blocks {
                    assert!(rig.blocked, "cycle {k}: the stalled viewer did not block");
                }
                end = end.max(pos);
                // Whatever reached the socket is read; the library's queue is not.
                rig.collect(1);
                let got = rig.hang_up(1);
                rig.close_ours(1);
                let queued = rig.mux.stats(1).queued;
                assert_eq!(rig.mux.event(1, cmx_sink_event::Closed), cmx_result::Ok);
                let st = rig.mux.stats(1);
                assert_eq!((st.state, st.queued), (CLOSED, 0), "cycle {k}: {st:?}");
                assert!(
                    queued > 0,
                    "cycle {k}: nothing was queued when it went away"
                );
                conns.push((connected_at, how, got));
            }
        }
        // Output while nobody watches.
        rig.pump_all(&data[pos..end]);
        pos = end;
        assert_all_balanced(&rig);
        // A hang guard, not a speed target: the harness's deadline
        // (CMX_TEST_DEADLINE_SECS under valgrind).
        assert!(
            start.elapsed() < deadline(),
            "gave up: {:?} after {k} cycles",
            start.elapsed()
        );
    }
    rig.drain();
    (rig, data, conns)
}

#[test]
fn drop_viewer_reconnecting_100_times_mid_stream_keeps_the_block_log_exact() {
    let start = Instant::now();
    let (replay, cycles) = (2048, 100);
    let (rig, data, conns) = flapping_viewer(drop_sink(), 16384, replay, cycles, 2 << 20);

    assert_exact(&rig, &[0], &data);
    let st = rig.mux.stats(1);
    assert_balanced("viewer", &st);
    assert_eq!((st.state, st.queued), (CLOSED, 0), "{st:?}");
    let received: usize = conns.iter().map(|c| c.2.len()).sum();
    assert_eq!(
        received as u64, st.delivered,
        "every delivered byte was read: {st:?}"
    );
    let abrupt = conns.iter().filter(|c| c.1 == HangUp::Abrupt).count();
    assert_eq!(st.write_errors, abrupt as u64, "{st:?}");
    assert_eq!(st.last_errno, libc::EPIPE);
    // The first viewer was there from the start; every later one got the
    // last `replay` bytes before it connected.
    assert_eq!(st.replayed, ((cycles - 1) * replay) as u64, "{st:?}");
    assert!(
        st.dropped > 0,
        "no connection ended with a full queue: {st:?}"
    );
    for (k, (at, how, got)) in conns.iter().enumerate() {
        // Where the connection's output starts: with the replayed history.
        let from = if k > 0 { at - replay } else { 0 };
        let segs = assert_segments_of(&format!("connection {k} ({how:?})"), got, &data[from..]);
        assert_eq!(
            segs[0].0, 0,
            "connection {k} does not start with its replay"
        );
        if k > 0 {
            assert_bytes_eq(
                &format!("connection {k} replay"),
                &got[..replay],
                &data[from..*at],
            );
        }
        if *how != HangUp::WhileStalled {
            assert_eq!(
                segs.len(),
                1,
                "connection {k} ({how:?}) has a gap: {segs:?}"
            );
        }
    }
    // The log never closed: the frontend was told OPENED once, nothing else.
    assert_eq!(rig.mux.ctx.events, [cmx_frontend_event::Opened]);
    println!(
        "100 reconnects over 2 MiB: {:?}; viewer {st:?}",
        start.elapsed()
    );
}

#[test]
fn block_viewer_reconnecting_100_times_mid_stream_never_loses_the_log_or_the_writer() {
    let start = Instant::now();
    let (rig, data, conns) = flapping_viewer(block(), 1024, 0, 100, 1 << 20);

    assert_exact(&rig, &[0], &data);
    let st = rig.mux.stats(1);
    assert_balanced("viewer", &st);
    let received: usize = conns.iter().map(|c| c.2.len()).sum();
    assert_eq!(received as u64, st.delivered);
    // A lossless viewer's connections are contiguous slices starting where
    // it connected; a stalled one's queue (and only that) was dropped.
    for (k, (at, how, got)) in conns.iter().enumerate() {
        assert_bytes_eq(
            &format!("connection {k} ({how:?})"),
            got,
            &data[*at..at + got.len()],
        );
    }
    let stalled = conns.iter().filter(|c| c.1 == HangUp::WhileStalled).count() as u64;
    assert!(
        st.backpressure_events >= stalled,
        "each stalled viewer blocked the writer: {st:?}"
    );
    // Each time a stalled viewer went away the blocked writer was woken.
    assert!(rig.mux.ctx.woken >= stalled, "woken {}", rig.mux.ctx.woken);
    assert_eq!(st.write_errors, 33, "{st:?}");
    println!(
        "100 block-viewer reconnects over 1 MiB: {:?}; viewer {st:?}",
        start.elapsed()
    );
}

// ---------------------------------------------------------------------------
// Hard write errors: ENOSPC, EIO, EPIPE
// ---------------------------------------------------------------------------

/// A tmpfs mounted on a fresh directory, unmounted (lazily, even if a test
/// fails) on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// None (with the reason) if mounting is not permitted here.
    fn mount(size: &str) -> Result<Tmpfs, String> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cmx-tmpfs-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let c = |s: &str| std::ffi::CString::new(s).unwrap();
        let target = c(dir.to_str().unwrap());
        let opts = c(&format!("size={size},mode=0700"));
        // SAFETY: all pointers are valid NUL-terminated strings.
        let r = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                opts.as_ptr().cast(),
            )
        };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            let _ = std::fs::remove_dir(&dir);
            return Err(format!("mount -t tmpfs -o size={size}: {e}"));
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let target = std::ffi::CString::new(self.dir.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        unsafe {
            libc::umount2(target.as_ptr(), libc::MNT_DETACH);
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn open_file(path: &Path, extra: libc::c_int) -> OwnedFd {
    open_raw(
        path,
        libc::O_WRONLY | libc::O_CREAT | libc::O_NONBLOCK | extra,
    )
}

#[test]
fn file_sink_on_a_full_tmpfs_fails_with_enospc_and_comes_back_after_space_is_freed() {
    let fs = match Tmpfs::mount("64k") {
        Ok(fs) => fs,
        Err(why) => {
            // The injected ENOSPC below covers the library's side.
            eprintln!("SKIPPED: cannot mount a tmpfs ({why}); see injected_enospc_and_eio_*");
            return;
        }
    };
    let start = Instant::now();
    let log = fs.path("console.log");
    let cfg = Cfg::new(&[block(), block(), drop_sink()]);
    let mut rig = Rig::new(&cfg);
    rig.attach_fd(1, open_file(&log, libc::O_TRUNC));
    let data = stream(1 << 20);

    // Nothing holds the writer up: the full disk is a failure, not a stall.
    rig.pump_all(&data);
    rig.drain();
    assert_exact(&rig, &[0], &data);
    assert_bytes_eq("drop sink", rig.received(2), &data);
    let st = rig.mux.stats(1);
    assert_eq!(
        (st.state, st.last_errno, st.write_errors, st.queued),
        (FAILED, libc::ENOSPC, 1, 0),
        "{st:?}"
    );
    let on_disk = std::fs::read(&log).unwrap();
    assert!(
        !on_disk.is_empty() && on_disk.len() <= 64 << 10,
        "{}",
        on_disk.len()
    );
    assert_eq!(
        st.delivered,
        on_disk.len() as u64,
        "delivered is what reached the file"
    );
    assert_bytes_eq("file on the full tmpfs", &on_disk, &data[..on_disk.len()]);
    assert_eq!(st.dropped, st.offered - st.delivered);
    assert_balanced("file", &st);
    assert_eq!(rig.mux.ctx.write_errors, [(1, libc::ENOSPC)]);

    // Space is freed (the log is rotated) and the backend reopens it.
    let more = stream(200_000);
    let more = &more[..40_000];
    rig.attach_fd(1, open_file(&log, libc::O_TRUNC));
    assert_eq!(rig.mux.event(1, cmx_sink_event::Opened), cmx_result::Ok);
    rig.pump_all(more);
    rig.drain();
    assert_bytes_eq("file after reopening", &std::fs::read(&log).unwrap(), more);
    let st2 = rig.mux.stats(1);
    assert_eq!((st2.state, st2.write_errors), (OPEN, 1), "{st2:?}");
    assert_eq!(st2.delivered, st.delivered + more.len() as u64);
    assert_balanced("file after reopening", &st2);
    let whole: Vec<u8> = data.iter().chain(more).copied().collect();
    assert_bytes_eq("block sink 0", rig.received(0), &whole);
    println!(
        "tmpfs ENOSPC after {} bytes: {:?}",
        on_disk.len(),
        start.elapsed()
    );
}

#[test]
fn injected_enospc_and_eio_after_n_bytes_fail_only_that_sink() {
    for (errno, limit) in [(libc::ENOSPC, 100_003usize), (libc::EIO, 77_777)] {
        let cfg = Cfg::new(&[block(), block(), block(), drop_sink()]);
        let mut rig = faulty_rig(&cfg);
        set_plan(
            1,
            Plan {
                fail_after: Some((limit, errno)),
                ..Plan::default()
            },
        );
        let data = stream(1 << 20);
        rig.pump_all(&data);
        rig.drain();
        assert_exact(&rig, &[0, 2], &data);
        assert_bytes_eq("drop sink", rig.received(3), &data);
        let st = rig.mux.stats(1);
        assert_eq!(
            (
                st.state,
                st.last_errno,
                st.write_errors,
                st.delivered,
                st.queued
            ),
            (FAILED, errno, 1, limit as u64, 0),
            "errno {errno}: {st:?}"
        );
        // The write that crossed the limit was cut short there, exactly.
        assert_bytes_eq("failing sink", rig.received(1), &data[..limit]);
        assert_eq!(st.dropped, st.offered - limit as u64);
        assert_balanced("failing sink", &st);
        // Failed once, then never written to again.
        assert_eq!(faults(1, |f| f.errors), 1);
        // It holds nothing up: only the other block sinks' (empty) queues count.
        assert_eq!(rig.mux.write_room(), CMX_DEFAULT_QUEUE_CAPACITY);

        // The backend reopens (a new connection); the fault is gone.
        set_plan(1, Plan::default());
        rig.close_ours(1);
        rig.attach(1);
        assert_eq!(rig.mux.event(1, cmx_sink_event::Opened), cmx_result::Ok);
        let more = &data[..50_000];
        rig.pump_all(more);
        rig.drain();
        assert_bytes_eq("reopened sink", rig.received(1), more);
        assert_eq!(rig.mux.stats(1).state, OPEN);
        assert_all_balanced(&rig);
    }
}

#[test]
fn eio_while_the_writer_waits_on_that_sink_wakes_the_writer() {
    let cap = 8192;
    let cfg = Cfg::new(&[block(), block()]).queue(cap);
    let mut rig = faulty_rig(&cfg);
    let data = stream(1 << 20);
    rig.pause(1, true);
    let accepted = rig.pump(&data, Duration::from_millis(100));
    assert!(
        accepted < data.len() && rig.blocked,
        "sink 1 did not hold the writer up"
    );
    assert_eq!(rig.mux.stats(1).queued, cap as u64);
    let woken = rig.mux.ctx.woken;

    // The device behind sink 1 breaks while its queue is full: the flush
    // from the watch fails, the queue is dropped, the writer is woken.
    let taken = faults(1, |f| f.taken);
    set_plan(
        1,
        Plan {
            fail_after: Some((taken, libc::EIO)),
            ..Plan::default()
        },
    );
    rig.pause(1, false);
    rig.pump_all(&data[accepted..]);
    assert!(rig.mux.ctx.woken > woken, "the writer was never woken");
    rig.drain();
    assert_exact(&rig, &[0], &data);
    let st = rig.mux.stats(1);
    assert_eq!(
        (st.state, st.last_errno, st.write_errors, st.queued),
        (FAILED, libc::EIO, 1, 0),
        "{st:?}"
    );
    assert_eq!(st.delivered, taken as u64);
    assert!(st.dropped >= cap as u64, "{st:?}");
    assert_balanced("failed sink", &st);
    // Only what the sink took before the fault reached its peer.
    assert_bytes_eq("failed sink", rig.received(1), &data[..taken]);
}

/// The pipe's capacity (what can be delivered but never read).
fn pipe_size(fd: &OwnedFd) -> usize {
    // SAFETY: fcntl on a live fd.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETPIPE_SZ) };
    assert!(n > 0);
    n as usize
}

#[test]
fn pipe_whose_reader_process_exits_fails_with_epipe_not_sigpipe() {
    ignore_sigpipe();
    let start = Instant::now();
    let read_bytes = 100_000;
    let cfg = Cfg::new(&[block(), block(), drop_sink()]);
    let mut rig = Rig::new(&cfg);
    let (rd, wr) = pipe();
    set_nonblocking(wr.as_raw_fd(), true);
    let cap = pipe_size(&wr);
    // A log reader that takes 100000 bytes and exits mid-stream.
    let mut reader = spawn_child(
        Command::new("head")
            .args(["-c", &read_bytes.to_string()])
            .stdin(Stdio::from(rd))
            .stdout(Stdio::piped()),
    );
    // Its output is collected as it comes (a full stdout pipe would stop it).
    let mut stdout = reader.stdout.take().unwrap();
    let collector = std::thread::spawn(move || {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut out).unwrap();
        out
    });
    rig.attach_fd(1, wr);
    let data = stream(1 << 20);
    // More than the reader takes plus what the pipe and the queue hold: the
    // stream can only get through if the sink fails instead of blocking.
    assert!(data.len() > read_bytes + cap + CMX_DEFAULT_QUEUE_CAPACITY);
    rig.pump_all(&data);
    rig.drain();
    let status = reader.wait().expect("head");
    assert!(status.success(), "{status:?}");
    let read = collector.join().unwrap();

    assert_exact(&rig, &[0], &data);
    assert_bytes_eq("drop sink", rig.received(2), &data);
    assert_bytes_eq("what the reader read", &read, &data[..read_bytes]);
    let st = rig.mux.stats(1);
    assert_eq!(
        (st.state, st.last_errno, st.write_errors, st.queued),
        (FAILED, libc::EPIPE, 1, 0),
        "{st:?}"
    );
    // What it read, plus at most a pipe full that nobody read.
    assert!(
        st.delivered >= read_bytes as u64 && st.delivered <= (read_bytes + cap) as u64,
        "{st:?}"
    );
    assert_balanced("pipe sink", &st);
    assert_eq!(rig.mux.ctx.write_errors, [(1, libc::EPIPE)]);
    println!(
        "reader exit after {read_bytes} bytes: {:?}",
        start.elapsed()
    );
}

// ---------------------------------------------------------------------------
// Soft faults: EINTR, spurious EAGAIN, short writes
// ---------------------------------------------------------------------------

#[test]
fn eintr_bursts_spurious_eagain_and_short_writes_lose_nothing() {
    let start = Instant::now();
    let cfg = Cfg::new(&[block(), block(), block(), drop_sink()]).queue(16384);
    let mut rig = faulty_rig(&cfg);
    // Sink 0: every other write is interrupted once (the same bytes are
    // offered again at once). Sink 1: runs of 20 EINTR, more than the 16 the
    // library offers again in a row, so it waits for the watch. Sink 2: spurious EAGAIN and short
    // writes. Sink 3 (drop): all of it.
    set_plan(
        0,
        Plan {
            eintr_every: 2,
            ..Plan::default()
        },
    );
    set_plan(
        1,
        Plan {
            eintr_burst: Some((37, 20)),
            ..Plan::default()
        },
    );
    set_plan(
        2,
        Plan {
            eagain_every: 5,
            short_every: 3,
            ..Plan::default()
        },
    );
    set_plan(
        3,
        Plan {
            eintr_every: 3,
            eintr_burst: Some((53, 17)),
            eagain_every: 11,
            short_every: 4,
            ..Plan::default()
        },
    );
    let data = stream(1 << 20);
    rig.pump_all(&data);
    rig.drain();
    assert_exact(&rig, &[0, 1, 2], &data);
    let st3 = rig.mux.stats(3);
    assert_eq!(st3.write_errors, 0, "{st3:?}");
    let segs = assert_segments_of("drop sink", rig.received(3), &data);
    assert_eq!(st3.dropped, (data.len() - rig.received(3).len()) as u64);
    assert_eq!(
        segs.last().unwrap().1,
        data.len(),
        "the drop sink ends with the end"
    );
    assert_all_balanced(&rig);
    assert!(rig.mux.ctx.write_errors.is_empty());
    let counts: Vec<_> = (0..4)
        .map(|i| faults(i, |f| (f.eintr, f.eagain, f.short)))
        .collect();
    assert!(counts[0].0 > 100 && counts[1].0 > 100 && counts[2].1 > 10 && counts[2].2 > 10);
    assert!(counts[3].0 > 0 && counts[3].1 > 0 && counts[3].2 > 0);
    // The EINTR runs on sink 1 went through its watch.
    assert!(rig.mux.ctx.watch_calls > 0);
    println!(
        "soft faults (eintr, eagain, short) {counts:?}, {} watch calls, {:?}",
        rig.mux.ctx.watch_calls,
        start.elapsed()
    );
}
