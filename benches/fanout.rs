//! Fan-out throughput: the multiplexer, driven through its C ABI, against
//! the floor hand-written fan-outs reach on the same machine.
//!
//! For each write size (4 KiB and 1 byte) and each sink count N (1, 2, 8)
//! the contenders are:
//!
//! - `write(2)`: a plain loop that `write(2)`s each buffer to N blocking
//!   `AF_UNIX` socketpairs in turn (unbuffered);
//! - `buffered` (1-byte writes only): the same loop behind one user-space
//!   buffer of `CMX_BENCH_BUF` bytes (default 8 KiB, the size of Rust's
//!   `BufWriter`), written to each socket in turn when full and at the end:
//!   what a writer that may hold its output for as long as it likes does;
//! - `mux`: `cmx_mux_write()` of the same buffers into sinks that are the
//!   same kind of socketpairs, non-blocking. After every call the loop
//!   drains the library's pull API: `cmx_mux_poll_transmit()`, one real
//!   `write(2)`, `cmx_mux_transmitted()`, until nothing is due, then
//!   `cmx_mux_watch_mask()` and `cmx_mux_poll_event()`. On
//!   `CMX_RESULT_WOULD_BLOCK` it `poll(2)`s the watched sinks and calls
//!   `cmx_mux_sink_writable()` until `CMX_FRONTEND_EVENT_WRITABLE`, as an
//!   event loop would. All sinks are `block` (lossless), queue capacity the
//!   default (64 KiB), replay off;
//! - `mux 1ms` (1-byte writes only): the same with `cmx_mux_write_at()` on
//!   the monotonic clock and the default 1 ms coalescing window, as QEMU
//!   drives it; the loop calls `cmx_mux_handle_timeout()` once the deadline
//!   of `cmx_mux_poll_timeout()` has passed, and once at the end.
//!
//! In all of them every peer end is drained by its own reading thread
//! (64 KiB reads), and the clock runs from the first write until every
//! reader has seen end of file, so all include the final drain. Each
//! reader's byte count is checked against what was written.
//!
//! After one short untimed warm-up run of `write(2)` and of `mux` (the first
//! runs of a process were up to 3 times slower than the rest), every
//! configuration runs `CMX_BENCH_REPEATS` rounds (default 5); in each
//! round every contender runs once, one after the other, and the order
//! rotates from round to round (A B, B A, ...), so that noise hits all of
//! them. A ratio (mux MiB/s over baseline MiB/s) is taken within each round,
//! and the table gives its min, median and max over the rounds. The target
//! is a ratio of at least 0.9; a row says "met" or "not met" only when its
//! whole min..max range is on one side of it, and "undecided (spread)"
//! otherwise: two runs of the same row have differed by more than the
//! distance to the target (0.86 and 1.00).
//!
//! Totals per run, overridable with environment variables:
//! - `CMX_BENCH_BYTES`: bytes per sink for 4 KiB writes (default 256 MiB);
//! - `CMX_BENCH_BYTES_1B`: bytes per sink for 1-byte writes (default
//!   768 KiB). One-byte writes through `write(2)` are bound by system calls
//!   and context switches: one call per byte per sink, each waking a reader;
//!   on a 2-CPU machine that is 3 to 5 us per call, so 768 KiB to 8 sinks
//!   takes that baseline some 20 s per run. Hence the small default.
//!
//! The whole run takes about 2.5 minutes on a 2-CPU machine, most of it in
//! the `write(2)` baseline with 1-byte writes.
//!
//! What the ratios mean: with 4 KiB writes every contender makes about one
//! `write(2)` per buffer per sink, and the time goes to the kernel (context
//! switches between the writer and the readers); the library's own code is
//! about 1% of the profile, plus the copy into its queue. With 1-byte writes `mux` is far ahead of
//! `write(2)`, for a reason that is not that baseline's fault: once a sink's
//! socket pushes back (EAGAIN), later bytes are queued and written in writes
//! of up to 64 KiB, while the plain loop still pays one system call per byte.
//! Against `buffered`, which makes one system call per 8 KiB per sink
//! whatever the readers do, plain `mux` writes through as long as the
//! sockets keep up; `mux 1ms` holds output for at most 1 ms, so it pays a
//! system call per sink per millisecond, plus its per-byte calls into the
//! library and a clock reading per byte (as QEMU makes).
//!
//! `CMX_BENCH_SIZES` (default `4096,1`), `CMX_BENCH_N` (default `1,2,8`) and
//! `CMX_BENCH_REPEATS` pick configurations; `CMX_BENCH_ONLY` (a comma-separated
//! list of `write`, `buffered`, `mux`, `mux1ms`, or `baseline` for the first
//! two, and `stalled` for the second table) runs some contenders only, e.g. for profiling; `CMX_BENCH_VERBOSE=1`
//! prints the multiplexer's system-call counts per run.
//!
//! MiB/s is what the frontend wrote per second; every sink received all of it.
//!
//! A second table, "stalled drop viewer", measures what one 1-byte
//! `cmx_mux_write()` costs when the only sink is a stalled `drop` viewer
//! whose queue is full: in `bytes` and in `lines` mode, with queues of
//! 64 KiB, 1 MiB and 16 MiB. The viewer took the first byte of a line (so
//! that, in lines mode, the rest of that line is kept whole) and then
//! pushed back (EAGAIN); the queue is then filled with one line that has
//! no newline, and every later byte makes room by dropping. The cost per
//! write must not grow with the queue. Each round builds a new multiplexer,
//! fills it, and times batches of writes (doubling) until a batch takes at
//! least 20 ms; the table gives ns per write, median (min-max) over
//! `CMX_BENCH_REPEATS` rounds. No system calls are made: this is the
//! library alone. `CMX_BENCH_ONLY=stalled` runs only this table.
//!
//! Two tables on line stamps (issue 18), library alone, no system calls,
//! ns per write, median (min-max) over `CMX_BENCH_REPEATS` rounds timed as
//! the stalled table is:
//!
//! - "line stamps, a sink that takes everything": one open `drop` sink
//!   (lines mode, 64 KiB queue, replay off) whose every transmit is
//!   reported written in full (no `write(2)`); the frontend writes 1-byte
//!   pieces of 80-byte lines (as a 16550 does) or whole 80-byte lines.
//!   Rows: stamps off with `cmx_mux_write_at()` (the call QEMU made before),
//!   stamps off with `cmx_mux_write_at_wall()`, and a stamped sink with
//!   `cmx_mux_write_at_wall()` (every line costs a stamp formatted and
//!   handed out). The rows "off, `write_at`" build and run unchanged on the
//!   library before line stamps, for a before/after comparison.
//! - "stalled stamped drop viewer": the stalled-viewer setup with a stamped
//!   sink whose full queue holds 80-byte lines, fed 1-byte pieces of lines:
//!   the cost per write must not grow with the queue (64 KiB, 1 MiB, 16 MiB).
//!
//! `CMX_BENCH_ONLY=stamps` runs only these two tables.
//!
//! Run with `cargo bench --bench fanout` (release profile).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chardev_multiplex::ffi::*;

const MIB: f64 = 1024.0 * 1024.0;
/// The ratio (mux over baseline) the library aims for.
const TARGET: f64 = 0.9;
/// `CMX_BENCH_VERBOSE`, once the warm-up is over.
static VERBOSE: AtomicBool = AtomicBool::new(false);

fn env_bytes(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a byte count")),
        Err(_) => default,
    }
}

/// A comma-separated list of numbers (for picking configurations by hand).
fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .split(',')
            .map(|x| {
                x.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}={v:?} is not a list of numbers"))
            })
            .collect(),
        Err(_) => default.to_vec(),
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn socketpair() -> (OwnedFd, OwnedFd) {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for two fds.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(r, 0, "socketpair: {}", std::io::Error::last_os_error());
    // SAFETY: both fds were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on an fd we hold.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        assert!(fl >= 0);
        assert_eq!(libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK), 0);
    }
}

/// Spawns a thread that reads `fd` until end of file and returns the count.
/// It waits on `start` first, so that thread creation is not timed.
fn reader(fd: OwnedFd, start: Arc<Barrier>) -> JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        let mut total = 0u64;
        start.wait();
        loop {
            // SAFETY: `buf` is valid for its length.
            let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            assert!(n >= 0, "read: {}", std::io::Error::last_os_error());
            if n == 0 {
                return total;
            }
            total += n as u64;
        }
    })
}

struct Setup {
    ours: Vec<OwnedFd>,
    readers: Vec<JoinHandle<u64>>,
    start: Arc<Barrier>,
}

impl Setup {
    fn new(n: usize) -> Setup {
        let start = Arc::new(Barrier::new(n + 1));
        let mut ours = Vec::new();
        let mut readers = Vec::new();
        for _ in 0..n {
            let (a, b) = socketpair();
            ours.push(a);
            readers.push(reader(b, start.clone()));
        }
        Setup {
            ours,
            readers,
            start,
        }
    }

    fn fds(&self) -> Vec<RawFd> {
        self.ours
            .iter()
            .map(std::os::fd::AsRawFd::as_raw_fd)
            .collect()
    }

    /// Closes our ends, joins the readers, checks their counts.
    fn finish(self, want: u64, what: &str) {
        drop(self.ours);
        for (i, r) in self.readers.into_iter().enumerate() {
            let got = r.join().expect("reader panicked");
            assert_eq!(got, want, "{what}: reader {i} got {got} bytes, want {want}");
        }
    }
}

/// The data: `total` bytes offered `size` bytes at a time, from a buffer
/// whose content changes with the offset (the same for every contender).
struct Source {
    buf: Vec<u8>,
    size: usize,
    total: usize,
}

impl Source {
    fn new(size: usize, total: usize) -> Source {
        let buf: Vec<u8> = (0..65536u32).map(|k| (k * 31 + 7) as u8).collect();
        Source { buf, size, total }
    }

    /// The buffer for the write at offset `off`.
    fn chunk(&self, off: usize) -> &[u8] {
        let len = self.size.min(self.total - off);
        let at = off % (self.buf.len() - self.size + 1).max(1);
        &self.buf[at..at + len]
    }
}

fn write_all_blocking(fd: RawFd, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: `data` is valid for its length.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            assert_eq!(
                errno(),
                libc::EINTR,
                "write: {}",
                std::io::Error::last_os_error()
            );
            continue;
        }
        data = &data[n as usize..];
    }
}

/// The hand-written fan-out: each buffer to each sink in turn, through a
/// user-space buffer of `buffer` bytes (0: none, every buffer is written).
fn run_baseline(n: usize, src: &Source, buffer: usize) -> Duration {
    let s = Setup::new(n);
    let fds = s.fds();
    let mut pending: Vec<u8> = Vec::with_capacity(buffer);
    let flush = |data: &[u8]| {
        for &fd in &fds {
            write_all_blocking(fd, data);
        }
    };
    s.start.wait();
    let t0 = Instant::now();
    let mut off = 0;
    while off < src.total {
        let c = src.chunk(off);
        if buffer == 0 {
            flush(c);
        } else {
            pending.extend_from_slice(c);
            if pending.len() >= buffer {
                flush(&pending);
                pending.clear();
            }
        }
        off += c.len();
    }
    flush(&pending);
    s.finish(src.total as u64, "baseline");
    t0.elapsed()
}

fn ok(r: cmx_result, what: &str) {
    assert_eq!(r, cmx_result::Ok, "{what}");
}

/// The caller's side of a multiplexer whose sinks are non-blocking fds.
struct Driver {
    mux: *mut cmx_mux,
    fds: Vec<RawFd>,
    /// The sinks to poll for POLLOUT, from `cmx_mux_watch_mask()`.
    watch: u32,
    /// `CMX_FRONTEND_EVENT_WRITABLE` came since this was last cleared.
    woken: bool,
    pfds: Vec<libc::pollfd>,
    idx: Vec<usize>,
    /// Counters for `CMX_BENCH_VERBOSE`.
    writes: u64,
    short_writes: u64,
    eagain: u64,
    polls: u64,
    would_blocks: u64,
}

impl Driver {
    fn new(cfg: &cmx_mux_config, fds: Vec<RawFd>) -> Driver {
        let mut mux = std::ptr::null_mut();
        // SAFETY: valid pointers, borrowed for the call.
        ok(unsafe { cmx_mux_new(cfg, &mut mux) }, "cmx_mux_new");
        Driver {
            mux,
            pfds: Vec::with_capacity(fds.len()),
            idx: Vec::with_capacity(fds.len()),
            fds,
            watch: 0,
            woken: false,
            writes: 0,
            short_writes: 0,
            eagain: 0,
            polls: 0,
            would_blocks: 0,
        }
    }

    /// The pull loop: writes what is due, then reads the watch mask and the
    /// frontend's events.
    fn drain(&mut self) {
        let mux = self.mux;
        loop {
            let mut t = cmx_transmit {
                sink: 0,
                data: std::ptr::null(),
                len: 0,
            };
            // SAFETY: live mux, writable out.
            ok(
                unsafe { cmx_mux_poll_transmit(mux, &mut t) },
                "poll_transmit",
            );
            if t.len == 0 {
                break;
            }
            // SAFETY: the library hands out `len` readable bytes.
            let n = unsafe { libc::write(self.fds[t.sink], t.data.cast(), t.len) };
            self.writes += 1;
            let result = if n < 0 {
                let e = errno();
                self.eagain += u64::from(e == libc::EAGAIN);
                -(e as isize)
            } else {
                self.short_writes += u64::from((n as usize) < t.len);
                n
            };
            // SAFETY: live mux.
            ok(
                unsafe { cmx_mux_transmitted(mux, t.sink, result) },
                "transmitted",
            );
        }
        // SAFETY: live mux, writable out.
        ok(
            unsafe { cmx_mux_watch_mask(mux, &mut self.watch) },
            "watch_mask",
        );
        loop {
            let mut ev = cmx_frontend_event::None;
            // SAFETY: live mux, writable out.
            ok(unsafe { cmx_mux_poll_event(mux, &mut ev) }, "poll_event");
            match ev {
                cmx_frontend_event::None => break,
                cmx_frontend_event::Writable => self.woken = true,
                _ => {}
            }
        }
    }

    /// Waits until a watched sink is writable, reports the ready ones and
    /// drains. Returns false at once when no sink is watched.
    fn service(&mut self) -> bool {
        self.pfds.clear();
        self.idx.clear();
        for (i, &fd) in self.fds.iter().enumerate() {
            if self.watch & 1 << i != 0 {
                self.pfds.push(libc::pollfd {
                    fd,
                    events: libc::POLLOUT,
                    revents: 0,
                });
                self.idx.push(i);
            }
        }
        if self.pfds.is_empty() {
            return false;
        }
        self.polls += 1;
        // SAFETY: `pfds` is a valid pollfd array.
        let r = unsafe { libc::poll(self.pfds.as_mut_ptr(), self.pfds.len() as u64, -1) };
        if r < 0 {
            assert_eq!(errno(), libc::EINTR);
            return true;
        }
        for (p, &i) in self.pfds.iter().zip(self.idx.iter()) {
            if p.revents != 0 {
                // SAFETY: live mux.
                ok(
                    unsafe { cmx_mux_sink_writable(self.mux, i) },
                    "sink_writable",
                );
            }
        }
        self.drain();
        true
    }

    /// With coalescing: releases held output once its deadline has passed.
    fn timer(&mut self, now: u64) {
        let (mut pending, mut deadline) = (false, 0);
        // SAFETY: live mux, writable outs.
        ok(
            unsafe { cmx_mux_poll_timeout(self.mux, &mut pending, &mut deadline) },
            "poll_timeout",
        );
        if pending && deadline <= now {
            // SAFETY: live mux.
            ok(
                unsafe { cmx_mux_handle_timeout(self.mux, now) },
                "handle_timeout",
            );
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // SAFETY: created by cmx_mux_new, freed once.
        unsafe {
            cmx_mux_free(self.mux);
        }
    }
}

/// The multiplexer: `cmx_mux_write()`, or with `coalesce` `cmx_mux_write_at()`
/// on the monotonic clock with the default window.
fn run_mux(n: usize, src: &Source, coalesce: bool) -> Duration {
    let s = Setup::new(n);
    for f in &s.ours {
        set_nonblocking(f.as_raw_fd());
    }
    let sinks = vec![
        cmx_sink_config {
            size: std::mem::size_of::<cmx_sink_config>(),
            overflow: cmx_overflow::Block as u32,
            open: true,
            input: false,
            drop_unit: cmx_drop_unit::Bytes as u32,
            drop_notice: false,
            timestamp: false,
        };
        n
    ];
    let cfg = cmx_mux_config {
        size: std::mem::size_of::<cmx_mux_config>(),
        sinks: sinks.as_ptr(),
        n_sinks: n,
        queue_capacity: CMX_DEFAULT_QUEUE_CAPACITY,
        replay_capacity: 0,
        coalesce_ns: if coalesce { CMX_DEFAULT_COALESCE_NS } else { 0 },
        replay_head_capacity: 0,
    };
    let mut d = Driver::new(&cfg, s.fds());
    d.drain(); // OPENED

    s.start.wait();
    let t0 = Instant::now();
    let clock = || t0.elapsed().as_nanos() as u64;
    let mut off = 0;
    while off < src.total {
        let c = src.chunk(off);
        let mut done = 0;
        while done < c.len() {
            let (data, len) = (c[done..].as_ptr(), c.len() - done);
            let mut acc = 0usize;
            d.woken = false;
            // SAFETY: live mux, valid buffers.
            let r = unsafe {
                if coalesce {
                    let now = clock();
                    d.timer(now);
                    cmx_mux_write_at(d.mux, data, len, now, &mut acc)
                } else {
                    cmx_mux_write(d.mux, data, len, &mut acc)
                }
            };
            d.drain();
            match r {
                cmx_result::Ok => done += acc,
                cmx_result::WouldBlock => {
                    d.would_blocks += 1;
                    while !d.woken && d.service() {}
                }
                r => panic!("cmx_mux_write: {r:?}"),
            }
        }
        off += c.len();
    }
    // Write out what is held and what is queued.
    // SAFETY: live mux.
    ok(
        unsafe { cmx_mux_handle_timeout(d.mux, clock()) },
        "handle_timeout",
    );
    d.drain();
    while d.service() {}
    let mut backlog = usize::MAX;
    // SAFETY: live mux, writable out.
    ok(
        unsafe { cmx_mux_lossless_backlog(d.mux, &mut backlog) },
        "backlog",
    );
    assert_eq!(backlog, 0);
    for i in 0..n {
        let mut st = cmx_sink_stats::default();
        // SAFETY: live mux, writable out.
        ok(unsafe { cmx_mux_sink_stats(d.mux, i, &mut st) }, "stats");
        assert_eq!(
            (st.delivered, st.queued, st.dropped),
            (src.total as u64, 0, 0)
        );
    }
    s.finish(src.total as u64, "mux");
    let elapsed = t0.elapsed();
    if VERBOSE.load(Ordering::Relaxed) {
        eprintln!(
            "  mux{} N={n} size={}: {:.3}s, {} write calls, {} sink writes \
             ({} short, {} EAGAIN), {} WOULD_BLOCK, {} polls",
            if coalesce { " 1ms" } else { "" },
            src.size,
            elapsed.as_secs_f64(),
            src.total.div_ceil(src.size),
            d.writes,
            d.short_writes,
            d.eagain,
            d.would_blocks,
            d.polls
        );
    }
    elapsed
}

/// A multiplexer whose only sink is a stalled `drop` viewer with a full
/// queue of `queue` bytes (see the module doc), in `lines` or `bytes` mode.
fn stalled_drop_viewer(queue: usize, lines: bool) -> Driver {
    let sinks = [cmx_sink_config {
        size: std::mem::size_of::<cmx_sink_config>(),
        overflow: cmx_overflow::Drop as u32,
        open: true,
        input: false,
        drop_unit: if lines {
            cmx_drop_unit::Lines
        } else {
            cmx_drop_unit::Bytes
        } as u32,
        drop_notice: false,
        timestamp: false,
    }];
    let cfg = cmx_mux_config {
        size: std::mem::size_of::<cmx_mux_config>(),
        sinks: sinks.as_ptr(),
        n_sinks: 1,
        queue_capacity: queue,
        replay_capacity: 0,
        coalesce_ns: 0,
        replay_head_capacity: 0,
    };
    let mut d = Driver::new(&cfg, vec![-1]);
    let write = |drv: &Driver, data: &[u8]| {
        let mut acc = 0usize;
        // SAFETY: live mux, valid buffers.
        let r = unsafe { cmx_mux_write(drv.mux, data.as_ptr(), data.len(), &mut acc) };
        assert_eq!((r, acc), (cmx_result::Ok, data.len()));
    };
    let transmit = |drv: &Driver, result: isize| {
        let mut t = cmx_transmit {
            sink: 0,
            data: std::ptr::null(),
            len: 0,
        };
        // SAFETY: live mux, writable out.
        ok(
            unsafe { cmx_mux_poll_transmit(drv.mux, &mut t) },
            "poll_transmit",
        );
        assert!(t.len > 0);
        // SAFETY: live mux.
        ok(
            unsafe { cmx_mux_transmitted(drv.mux, 0, result) },
            "transmitted",
        );
    };
    // The viewer takes the first byte of a line, then pushes back.
    write(&d, b"ab");
    transmit(&d, 1);
    transmit(&d, -(libc::EAGAIN as isize));
    // One line with no newline fills the queue.
    let line = vec![b'x'; 64 << 10];
    let mut left = queue;
    while left > 0 {
        let n = left.min(line.len());
        write(&d, &line[..n]);
        left -= n;
    }
    d.drain();
    d
}

/// ns per 1-byte `cmx_mux_write()` into [`stalled_drop_viewer`], one round.
fn stalled_write_ns(queue: usize, lines: bool) -> f64 {
    let d = stalled_drop_viewer(queue, lines);
    let byte = [b'y'];
    let mut batch = 1u64;
    let mut written = 0u64;
    let ns = loop {
        let t0 = Instant::now();
        for _ in 0..batch {
            let mut acc = 0usize;
            // SAFETY: live mux, valid buffers.
            let r = unsafe { cmx_mux_write(d.mux, byte.as_ptr(), 1, &mut acc) };
            assert!(r == cmx_result::Ok && acc == 1, "write: {r:?}, {acc}");
        }
        let dt = t0.elapsed();
        written += batch;
        if dt >= Duration::from_millis(20) {
            break dt.as_nanos() as f64 / batch as f64;
        }
        batch *= 2;
    };
    // Every byte past the queue's capacity was dropped and counted, and
    // the viewer was never offered anything again.
    let mut st = cmx_sink_stats::default();
    // SAFETY: live mux, writable out.
    ok(unsafe { cmx_mux_sink_stats(d.mux, 0, &mut st) }, "stats");
    assert_eq!(st.offered, 2 + queue as u64 + written);
    assert_eq!(st.offered, st.delivered + st.queued + st.dropped);
    assert_eq!(st.delivered, 1);
    assert!(st.queued as usize <= queue);
    ns
}

/// The "stalled drop viewer" table.
fn stalled_table(rounds: usize) {
    println!();
    println!(
        "stalled drop viewer: one 1-byte cmx_mux_write() into a full queue, ns per write, \
         median (min-max) over {rounds} rounds"
    );
    println!("{:>10}  {:<6} {:>30}", "queue", "unit", "ns per write");
    // Untimed warm-up (page faults, lazy binding), as for the fan-out table.
    stalled_write_ns(64 << 10, false);
    for queue in [64 << 10, 1 << 20, 16 << 20] {
        for lines in [false, true] {
            let v: Vec<f64> = (0..rounds)
                .map(|_| stalled_write_ns(queue, lines))
                .collect();
            let (lo, med, hi) = spread(&v);
            let unit = if lines { "lines" } else { "bytes" };
            let range = format!("{med:.1} ({lo:.1}-{hi:.1})");
            println!("{:>10}  {unit:<6} {range:>30}", size_label(queue));
        }
    }
}

/// A sink configuration; `stamped` asks for line stamps.
fn sink_cfg(overflow: cmx_overflow, unit: cmx_drop_unit, stamped: bool) -> cmx_sink_config {
    cmx_sink_config {
        size: std::mem::size_of::<cmx_sink_config>(),
        overflow: overflow as u32,
        open: true,
        input: false,
        drop_unit: unit as u32,
        drop_notice: false,
        timestamp: stamped,
    }
}

/// A multiplexer configuration over `sinks` with a `queue`-byte queue,
/// no replay and no coalescing.
fn mux_cfg(sinks: &[cmx_sink_config], queue: usize) -> cmx_mux_config {
    cmx_mux_config {
        size: std::mem::size_of::<cmx_mux_config>(),
        sinks: sinks.as_ptr(),
        n_sinks: sinks.len(),
        queue_capacity: queue,
        replay_capacity: 0,
        coalesce_ns: 0,
        replay_head_capacity: 0,
    }
}

/// An 80-byte line.
fn line80() -> Vec<u8> {
    (0..80u8)
        .map(|k| if k == 79 { b'\n' } else { b'a' + k % 26 })
        .collect()
}

/// 2026-12-06T18:11:04.783070Z.
const WALL0: u64 = 1_796_580_664_783_070_000;

/// How a write is made, for the stamp tables.
#[derive(Clone, Copy)]
enum Stamping {
    /// No stamps; `cmx_mux_write_at()`.
    OffWriteAt,
    /// No stamps; `cmx_mux_write_at_wall()`.
    OffWall,
    /// A stamped sink; `cmx_mux_write_at_wall()`.
    On,
}

impl Stamping {
    fn label(self) -> &'static str {
        match self {
            Stamping::OffWriteAt => "off, write_at",
            Stamping::OffWall => "off, write_at_wall",
            Stamping::On => "on, write_at_wall",
        }
    }

    /// One write of `data` at `k` (ns, and the wall clock moves with it).
    fn write(self, mux: *mut cmx_mux, data: &[u8], k: u64) {
        let mut acc = 0usize;
        // SAFETY: live mux, valid buffers.
        let r = unsafe {
            match self {
                Stamping::OffWriteAt => {
                    cmx_mux_write_at(mux, data.as_ptr(), data.len(), k, &mut acc)
                }
                Stamping::OffWall | Stamping::On => cmx_mux_write_at_wall(
                    mux,
                    data.as_ptr(),
                    data.len(),
                    k,
                    WALL0 + k * 1000,
                    &mut acc,
                ),
            }
        };
        assert!(
            r == cmx_result::Ok && acc == data.len(),
            "write: {r:?}, {acc}"
        );
    }
}

/// Times batches of `step(k)` (doubling) until one takes 20 ms; ns per call.
fn ns_per_call(mut step: impl FnMut(u64)) -> f64 {
    let mut batch = 1u64;
    let mut k = 0u64;
    loop {
        let t0 = Instant::now();
        for _ in 0..batch {
            step(k);
            k += 1;
        }
        let dt = t0.elapsed();
        if dt >= Duration::from_millis(20) {
            return dt.as_nanos() as f64 / batch as f64;
        }
        batch *= 2;
    }
}

/// ns per write (and its transmits) into one sink that takes everything.
fn taking_sink_ns(size: usize, how: Stamping) -> f64 {
    let sinks = [sink_cfg(
        cmx_overflow::Drop,
        cmx_drop_unit::Lines,
        matches!(how, Stamping::On),
    )];
    let d = Driver::new(&mux_cfg(&sinks, CMX_DEFAULT_QUEUE_CAPACITY), vec![-1]);
    let line = line80();
    let mut t = cmx_transmit {
        sink: 0,
        data: std::ptr::null(),
        len: 0,
    };
    let (mut bytes, mut handed) = (0u64, 0u64);
    let ns = ns_per_call(|k| {
        let at = (k as usize * size) % 80;
        let data = &line[at..at + size.min(80 - at)];
        how.write(d.mux, data, k);
        bytes += data.len() as u64;
        // SAFETY: live mux, writable out; each transmit reported in full.
        unsafe {
            while cmx_mux_poll_transmit(d.mux, &mut t) == cmx_result::Ok && t.len > 0 {
                handed += t.len as u64;
                ok(cmx_mux_transmitted(d.mux, 0, t.len as isize), "transmitted");
            }
        }
    });
    let mut st = cmx_sink_stats::default();
    // SAFETY: live mux, writable out.
    ok(unsafe { cmx_mux_sink_stats(d.mux, 0, &mut st) }, "stats");
    assert_eq!((st.delivered, st.queued), (bytes, 0));
    assert_eq!(handed, st.delivered + st.stamp_bytes);
    if matches!(how, Stamping::On) {
        assert!(st.stamps >= bytes / 80, "{st:?}");
    } else {
        assert_eq!(st.stamps, 0);
    }
    ns
}

/// ns per 1-byte write into a stalled stamped `drop` viewer whose full
/// queue of `queue` bytes holds 80-byte lines.
fn stalled_stamped_ns(queue: usize, lines: bool) -> f64 {
    let unit = if lines {
        cmx_drop_unit::Lines
    } else {
        cmx_drop_unit::Bytes
    };
    let sinks = [sink_cfg(cmx_overflow::Drop, unit, true)];
    let d = Driver::new(&mux_cfg(&sinks, queue), vec![-1]);
    let line = line80();
    let transmit = |result: isize| {
        let mut t = cmx_transmit {
            sink: 0,
            data: std::ptr::null(),
            len: 0,
        };
        // SAFETY: live mux, writable out.
        ok(
            unsafe { cmx_mux_poll_transmit(d.mux, &mut t) },
            "poll_transmit",
        );
        assert!(t.len > 0);
        // SAFETY: live mux.
        ok(
            unsafe { cmx_mux_transmitted(d.mux, 0, result) },
            "transmitted",
        );
    };
    // The viewer takes a stamp and the first byte of a line, then pushes back.
    Stamping::On.write(d.mux, &line, 0);
    transmit(28);
    transmit(1);
    transmit(-(libc::EAGAIN as isize));
    for k in 0..queue / 80 + 1 {
        Stamping::On.write(d.mux, &line, k as u64);
    }
    let ns = ns_per_call(|k| Stamping::On.write(d.mux, &line[k as usize % 80..][..1], k));
    let mut st = cmx_sink_stats::default();
    // SAFETY: live mux, writable out.
    ok(unsafe { cmx_mux_sink_stats(d.mux, 0, &mut st) }, "stats");
    assert_eq!(st.offered, st.delivered + st.queued + st.dropped);
    assert_eq!((st.delivered, st.stamps), (1, 1));
    ns
}

/// The two line-stamp tables.
fn stamp_tables(rounds: usize) {
    println!();
    println!(
        "line stamps, a sink that takes everything: one write and its transmits, ns per write, \
         median (min-max) over {rounds} rounds"
    );
    println!("{:>6}  {:<20} {:>30}", "write", "stamps", "ns per write");
    taking_sink_ns(1, Stamping::On); // warm-up
    for size in [1usize, 80] {
        for how in [Stamping::OffWriteAt, Stamping::OffWall, Stamping::On] {
            let v: Vec<f64> = (0..rounds).map(|_| taking_sink_ns(size, how)).collect();
            let (lo, med, hi) = spread(&v);
            let range = format!("{med:.1} ({lo:.1}-{hi:.1})");
            println!("{:>6}  {:<20} {range:>30}", size_label(size), how.label());
        }
    }
    println!();
    println!(
        "stalled stamped drop viewer: one 1-byte piece of an 80-byte line into a full queue of \
         lines, ns per write, median (min-max) over {rounds} rounds"
    );
    println!("{:>10}  {:<6} {:>30}", "queue", "unit", "ns per write");
    stalled_stamped_ns(64 << 10, false); // warm-up
    for queue in [64 << 10, 1 << 20, 16 << 20] {
        for lines in [false, true] {
            let v: Vec<f64> = (0..rounds)
                .map(|_| stalled_stamped_ns(queue, lines))
                .collect();
            let (lo, med, hi) = spread(&v);
            let unit = if lines { "lines" } else { "bytes" };
            let range = format!("{med:.1} ({lo:.1}-{hi:.1})");
            println!("{:>10}  {unit:<6} {range:>30}", size_label(queue));
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Contender {
    Write,
    Buffered,
    Mux,
    MuxCoalesced,
}

impl Contender {
    fn key(self) -> &'static str {
        match self {
            Contender::Write => "write",
            Contender::Buffered => "buffered",
            Contender::Mux => "mux",
            Contender::MuxCoalesced => "mux1ms",
        }
    }

    fn name(self, buffer: usize) -> String {
        match self {
            Contender::Write => "write(2)".to_owned(),
            Contender::Buffered => format!("buffered {}", size_label(buffer)),
            Contender::Mux => "mux".to_owned(),
            Contender::MuxCoalesced => "mux 1ms".to_owned(),
        }
    }

    fn is_mux(self) -> bool {
        matches!(self, Contender::Mux | Contender::MuxCoalesced)
    }

    fn run(self, n: usize, src: &Source, buffer: usize) -> Duration {
        match self {
            Contender::Write => run_baseline(n, src, 0),
            Contender::Buffered => run_baseline(n, src, buffer),
            Contender::Mux => run_mux(n, src, false),
            Contender::MuxCoalesced => run_mux(n, src, true),
        }
    }
}

fn size_label(size: usize) -> String {
    match size {
        1 => "1 B".to_owned(),
        s if s % 1024 == 0 => format!("{} KiB", s / 1024),
        s => format!("{s} B"),
    }
}

/// (min, median, max); the median of an even count is the mean of the middle two.
fn spread(v: &[f64]) -> (f64, f64, f64) {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let k = v.len();
    let med = if k % 2 == 1 {
        v[k / 2]
    } else {
        (v[k / 2 - 1] + v[k / 2]) / 2.0
    };
    (v[0], med, v[k - 1])
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Met,
    NotMet,
    Undecided,
}

impl Verdict {
    /// A verdict only when every round's ratio is on the same side of the target.
    fn of(ratios: &[f64]) -> Verdict {
        let (lo, _, hi) = spread(ratios);
        if lo >= TARGET {
            Verdict::Met
        } else if hi < TARGET {
            Verdict::NotMet
        } else {
            Verdict::Undecided
        }
    }

    fn text(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::NotMet => "not met",
            Verdict::Undecided => "undecided (spread)",
        }
    }
}

/// One row of the ratio table.
struct RatioRow {
    label: String,
    n: usize,
    mux: String,
    baseline: String,
    ratios: Vec<f64>,
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is understood.
    let total_4k = env_bytes("CMX_BENCH_BYTES", 256 << 20);
    let total_1b = env_bytes("CMX_BENCH_BYTES_1B", 768 << 10);
    let buffer = env_bytes("CMX_BENCH_BUF", 8 << 10).max(1);
    let rounds = env_bytes("CMX_BENCH_REPEATS", 5).max(1);
    let only: Vec<String> = std::env::var("CMX_BENCH_ONLY")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let wanted = |c: Contender| {
        only.is_empty()
            || only.iter().any(|o| {
                o == c.key()
                    || (o == "baseline" && matches!(c, Contender::Write | Contender::Buffered))
            })
    };
    // SAFETY: ignoring SIGPIPE has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let stalled = only.is_empty() || only.iter().any(|o| o == "stalled");
    if stalled {
        stalled_table(rounds);
    }
    if only.is_empty() || only.iter().any(|o| o == "stamps") {
        stamp_tables(rounds);
    }
    if !only.is_empty() && only.iter().all(|o| o == "stalled" || o == "stamps") {
        return;
    }
    if stalled {
        println!();
    }

    println!(
        "fan-out to N AF_UNIX socketpairs, one reader thread each; {} CPUs; {rounds} rounds per \
         configuration, each contender once per round, order rotating",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    println!(
        "bytes per sink and run: {} MiB with 4 KiB writes (CMX_BENCH_BYTES), {} MiB with 1-byte \
         writes (CMX_BENCH_BYTES_1B); buffered baseline: {} buffer (CMX_BENCH_BUF)",
        total_4k as f64 / MIB,
        total_1b as f64 / MIB,
        size_label(buffer)
    );
    println!("MiB/s: bytes the frontend wrote per second (every sink receives all of them)");
    println!();
    println!(
        "{:>10} {:>3}  {:<14} {:>30}",
        "write size", "N", "contender", "MiB/s median (min-max)"
    );
    let sizes = env_list("CMX_BENCH_SIZES", &[4096, 1]);
    let counts = env_list("CMX_BENCH_N", &[1, 2, 8]);
    // One short untimed run of each contender first: the first runs of a
    // process were up to 3 times slower than the rest (page faults, lazy
    // symbol binding, thread start-up), whichever contender went first.
    let warm_up = Source::new(4096, 8 << 20);
    for c in [Contender::Write, Contender::Mux] {
        c.run(2, &warm_up, buffer);
    }
    VERBOSE.store(
        std::env::var_os("CMX_BENCH_VERBOSE").is_some(),
        Ordering::Relaxed,
    );
    let mut rows: Vec<RatioRow> = Vec::new();
    for &size in &sizes {
        assert!(size > 0, "a write size of 0");
        let total = if size == 1 { total_1b } else { total_4k };
        let src = Source::new(size, total);
        let contenders: Vec<Contender> = if size == 1 {
            vec![
                Contender::Write,
                Contender::Buffered,
                Contender::Mux,
                Contender::MuxCoalesced,
            ]
        } else {
            vec![Contender::Write, Contender::Mux]
        }
        .into_iter()
        .filter(|&c| wanted(c))
        .collect();
        let k = contenders.len();
        for &n in &counts {
            assert!(
                (1..=CMX_MAX_SINKS).contains(&n),
                "N must be 1 to {CMX_MAX_SINKS}"
            );
            let mut mbs: Vec<Vec<f64>> = vec![Vec::new(); k];
            for round in 0..rounds {
                for j in 0..k {
                    let c = (j + round) % k;
                    let d = contenders[c].run(n, &src, buffer);
                    mbs[c].push(total as f64 / MIB / d.as_secs_f64());
                }
            }
            let label = size_label(size);
            for (c, v) in contenders.iter().zip(&mbs) {
                let (lo, med, hi) = spread(v);
                let range = format!("{med:.3} ({lo:.3}-{hi:.3})");
                println!("{label:>10} {n:>3}  {:<14} {range:>30}", c.name(buffer));
            }
            for (m, mv) in contenders.iter().zip(&mbs).filter(|(c, _)| c.is_mux()) {
                for (b, bv) in contenders.iter().zip(&mbs).filter(|(c, _)| !c.is_mux()) {
                    rows.push(RatioRow {
                        label: label.clone(),
                        n,
                        mux: m.name(buffer),
                        baseline: b.name(buffer),
                        ratios: mv.iter().zip(bv).map(|(x, y)| x / y).collect(),
                    });
                }
            }
        }
    }
    println!();
    println!("mux / baseline, one ratio per round; target >= {TARGET}: a verdict only when min..max is on one side");
    println!(
        "{:>10} {:>3}  {:<8} {:<14} {:>8} {:>8} {:>8}  verdict",
        "write size", "N", "mux", "baseline", "min", "median", "max"
    );
    let mut verdicts = Vec::new();
    for r in &rows {
        let (lo, med, hi) = spread(&r.ratios);
        let v = Verdict::of(&r.ratios);
        verdicts.push(v);
        println!(
            "{:>10} {:>3}  {:<8} {:<14} {lo:>8.2} {med:>8.2} {hi:>8.2}  {}",
            r.label,
            r.n,
            r.mux,
            r.baseline,
            v.text()
        );
    }
    println!();
    println!("readers received the right byte count in every run (checked)");
    println!(
        "1-byte writes: the mux queues bytes once a socket pushes back and writes them in large \
         writes; write(2) makes one system call per byte per sink, buffered one per {} per sink",
        size_label(buffer)
    );
    if rows.is_empty() {
        println!("target ratio >= {TARGET}: no ratios (one side only)");
        return;
    }
    let mut baselines: Vec<&str> = Vec::new();
    for r in &rows {
        if !baselines.contains(&r.baseline.as_str()) {
            baselines.push(&r.baseline);
        }
    }
    for base in baselines {
        let of = |v: Verdict| {
            rows.iter()
                .zip(&verdicts)
                .filter(|(r, &x)| r.baseline == base && x == v)
                .count()
        };
        let overall = if of(Verdict::NotMet) > 0 {
            Verdict::NotMet
        } else if of(Verdict::Undecided) > 0 {
            Verdict::Undecided
        } else {
            Verdict::Met
        };
        println!(
            "target ratio >= {TARGET} against {base} everywhere: {} ({} rows met, {} not met, {} undecided)",
            overall.text(),
            of(Verdict::Met),
            of(Verdict::NotMet),
            of(Verdict::Undecided)
        );
    }
}
