//! Fan-out throughput: the multiplexer, driven through its C ABI, against
//! the floor a hand-written fan-out reaches on the same machine.
//!
//! For each write size (4 KiB and 1 byte) and each sink count N (1, 2, 8):
//!
//! - baseline: a plain loop that `write(2)`s each buffer to N blocking
//!   `AF_UNIX` socketpairs in turn;
//! - mux: `cmx_mux_write()` of the same buffers; the sinks are the same kind
//!   of socketpairs, non-blocking, and the `sink_write` callback does one real
//!   `write(2)`. On `CMX_RESULT_WOULD_BLOCK` the loop `poll(2)`s the sinks the
//!   library asked to watch and calls `cmx_mux_sink_writable()` until
//!   `frontend_writable` is called, as an event loop would. All sinks are
//!   `block` (lossless), queue capacity the default (64 KiB), replay off.
//!
//! In both, every peer end is drained by its own reading thread (64 KiB
//! reads), and the clock runs from the first write until every reader has
//! seen end of file, so both include the final drain. Each reader's byte
//! count is checked against what was written.
//!
//! Every configuration runs `CMX_BENCH_REPEATS` times (default 3), baseline
//! and mux alternating (and swapping which goes first), so that noise hits
//! both; the table gives the medians.
//!
//! Totals per run, overridable with environment variables:
//! - `CMX_BENCH_BYTES`: bytes per sink for 4 KiB writes (default 256 MiB);
//! - `CMX_BENCH_BYTES_1B`: bytes per sink for 1-byte writes (default 1 MiB).
//!   One-byte writes are bound by system calls and context switches: the
//!   baseline makes one `write(2)` per byte per sink, each waking a reader;
//!   on a 2-CPU machine that is about 5 us per call, so 1 MiB to 8 sinks takes
//!   the baseline some 40 s per run. Hence the small default.
//!
//! What the ratio means: with 4 KiB writes both sides make about one
//! `write(2)` per buffer per sink, and the time goes to the kernel (context
//! switches between the writer and the readers); the library's own code is
//! under 1% of the profile. With 1-byte writes the multiplexer is far ahead
//! of the baseline, for a reason that is not the baseline's fault: once a
//! sink's socket pushes back (EAGAIN), later bytes are queued and flushed in
//! writes of up to 64 KiB, while the plain loop still pays one system call
//! per byte.
//!
//! `CMX_BENCH_SIZES` (default `4096,1`), `CMX_BENCH_N` (default `1,2,8`) and
//! `CMX_BENCH_REPEATS` pick configurations, and `CMX_BENCH_ONLY=baseline` or
//! `CMX_BENCH_ONLY=mux` runs one side only, e.g. for profiling;
//! `CMX_BENCH_VERBOSE=1` prints the multiplexer's system-call counts per run.
//!
//! MiB/s is what the frontend wrote per second; every sink received all of it.
//!
//! Run with `cargo bench --bench fanout` (release profile).

use std::cell::Cell;
use std::ffi::c_void;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chardev_multiplex::ffi::*;

const MIB: f64 = 1024.0 * 1024.0;

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

fn setup(n: usize) -> Setup {
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

/// Closes our ends, joins the readers, checks their counts.
fn finish(s: Setup, want: u64, what: &str) {
    drop(s.ours);
    for (i, r) in s.readers.into_iter().enumerate() {
        let got = r.join().expect("reader panicked");
        assert_eq!(got, want, "{what}: reader {i} got {got} bytes, want {want}");
    }
}

/// The data: `total` bytes offered `size` bytes at a time, from a buffer
/// whose content changes with the offset (the same for both contenders).
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

/// The hand-written fan-out: each buffer to each sink in turn.
fn run_baseline(n: usize, src: &Source) -> Duration {
    let s = setup(n);
    let fds: Vec<RawFd> = s.ours.iter().map(|f| f.as_raw_fd()).collect();
    s.start.wait();
    let t0 = Instant::now();
    let mut off = 0;
    while off < src.total {
        let c = src.chunk(off);
        for &fd in &fds {
            write_all_blocking(fd, c);
        }
        off += c.len();
    }
    finish(s, src.total as u64, "baseline");
    t0.elapsed()
}

/// The callbacks' opaque state.
struct Ctx {
    fds: Vec<RawFd>,
    watching: [Cell<bool>; CMX_MAX_SINKS],
    woken: Cell<bool>,
    /// Counters for CMX_BENCH_VERBOSE.
    writes: Cell<u64>,
    short_writes: Cell<u64>,
    eagain: Cell<u64>,
    polls: Cell<u64>,
    would_blocks: Cell<u64>,
}

unsafe extern "C" fn cb_write(
    opaque: *mut c_void,
    sink: usize,
    data: *const u8,
    len: usize,
) -> isize {
    // SAFETY: `opaque` is our Ctx; `data` is valid for `len` bytes.
    unsafe {
        let ctx = &*(opaque as *const Ctx);
        let n = libc::write(ctx.fds[sink], data.cast(), len);
        ctx.writes.set(ctx.writes.get() + 1);
        if n < 0 {
            let e = errno();
            if e == libc::EAGAIN {
                ctx.eagain.set(ctx.eagain.get() + 1);
            }
            -(e as isize)
        } else {
            if (n as usize) < len {
                ctx.short_writes.set(ctx.short_writes.get() + 1);
            }
            n
        }
    }
}

unsafe extern "C" fn cb_watch(opaque: *mut c_void, sink: usize, enable: bool) {
    // SAFETY: `opaque` is our Ctx.
    let ctx = unsafe { &*(opaque as *const Ctx) };
    ctx.watching[sink].set(enable);
}

unsafe extern "C" fn cb_writable(opaque: *mut c_void) {
    // SAFETY: `opaque` is our Ctx.
    let ctx = unsafe { &*(opaque as *const Ctx) };
    ctx.woken.set(true);
}

/// Polls the watched sinks for POLLOUT (blocking) and reports the ready ones.
fn service(mux: *mut cmx_mux, ctx: &Ctx, pfds: &mut Vec<libc::pollfd>, idx: &mut Vec<usize>) {
    pfds.clear();
    idx.clear();
    for (i, &fd) in ctx.fds.iter().enumerate() {
        if ctx.watching[i].get() {
            pfds.push(libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            });
            idx.push(i);
        }
    }
    if pfds.is_empty() {
        return;
    }
    ctx.polls.set(ctx.polls.get() + 1);
    // SAFETY: `pfds` is a valid pollfd array.
    let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, -1) };
    if r < 0 {
        assert_eq!(errno(), libc::EINTR);
        return;
    }
    for (p, &i) in pfds.iter().zip(idx.iter()) {
        if p.revents != 0 {
            // SAFETY: live mux.
            let r = unsafe { cmx_mux_sink_writable(mux, i) };
            assert_eq!(r, cmx_result::Ok);
        }
    }
}

fn run_mux(n: usize, src: &Source) -> Duration {
    let s = setup(n);
    for f in &s.ours {
        set_nonblocking(f.as_raw_fd());
    }
    let ctx = Box::new(Ctx {
        fds: s.ours.iter().map(|f| f.as_raw_fd()).collect(),
        watching: Default::default(),
        woken: Cell::new(false),
        writes: Cell::new(0),
        short_writes: Cell::new(0),
        eagain: Cell::new(0),
        polls: Cell::new(0),
        would_blocks: Cell::new(0),
    });
    let sinks = vec![
        cmx_sink_config {
            overflow: cmx_overflow::Block as u32,
            open: true,
            input: false,
        };
        n
    ];
    let cfg = cmx_mux_config {
        sinks: sinks.as_ptr(),
        n_sinks: n,
        queue_capacity: CMX_DEFAULT_QUEUE_CAPACITY,
        replay_capacity: 0,
        coalesce_ns: 0,
    };
    let cb = cmx_callbacks {
        sink_write: Some(cb_write),
        sink_watch: Some(cb_watch),
        frontend_writable: Some(cb_writable),
        frontend_input: None,
        frontend_event: None,
    };
    let mut mux: *mut cmx_mux = std::ptr::null_mut();
    // SAFETY: valid pointers; `ctx` outlives the mux.
    let r = unsafe { cmx_mux_new(&cfg, &cb, &*ctx as *const Ctx as *mut c_void, &mut mux) };
    assert_eq!(r, cmx_result::Ok);
    let mut pfds = Vec::with_capacity(n);
    let mut idx = Vec::with_capacity(n);

    s.start.wait();
    let t0 = Instant::now();
    let mut off = 0;
    while off < src.total {
        let c = src.chunk(off);
        let mut done = 0;
        while done < c.len() {
            let mut acc = 0usize;
            // SAFETY: live mux, valid buffers.
            let r = unsafe { cmx_mux_write(mux, c[done..].as_ptr(), c.len() - done, &mut acc) };
            match r {
                cmx_result::Ok => done += acc,
                cmx_result::WouldBlock => {
                    ctx.would_blocks.set(ctx.would_blocks.get() + 1);
                    ctx.woken.set(false);
                    while !ctx.woken.get() {
                        service(mux, &ctx, &mut pfds, &mut idx);
                    }
                }
                r => panic!("cmx_mux_write: {r:?}"),
            }
        }
        off += c.len();
    }
    // Flush what is still queued.
    while ctx.watching.iter().any(|w| w.get()) {
        service(mux, &ctx, &mut pfds, &mut idx);
    }
    for i in 0..n {
        let mut st = cmx_sink_stats::default();
        // SAFETY: live mux, writable out.
        let r = unsafe { cmx_mux_sink_stats(mux, i, &mut st) };
        assert_eq!(r, cmx_result::Ok);
        assert_eq!(
            (st.delivered, st.queued, st.dropped),
            (src.total as u64, 0, 0)
        );
    }
    finish(s, src.total as u64, "mux");
    let elapsed = t0.elapsed();
    if std::env::var_os("CMX_BENCH_VERBOSE").is_some() {
        eprintln!(
            "  mux N={n} size={}: {:.3}s, {} cmx_mux_write calls, {} sink writes \
             ({} short, {} EAGAIN), {} WOULD_BLOCK, {} polls",
            src.size,
            elapsed.as_secs_f64(),
            src.total.div_ceil(src.size),
            ctx.writes.get(),
            ctx.short_writes.get(),
            ctx.eagain.get(),
            ctx.would_blocks.get(),
            ctx.polls.get()
        );
    }
    // SAFETY: live mux, freed once.
    assert_eq!(unsafe { cmx_mux_free(mux) }, cmx_result::Ok);
    elapsed
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is understood.
    let total_4k = env_bytes("CMX_BENCH_BYTES", 256 << 20);
    let total_1b = env_bytes("CMX_BENCH_BYTES_1B", 1 << 20);
    let repeats = env_bytes("CMX_BENCH_REPEATS", 3).max(1);
    // SAFETY: ignoring SIGPIPE has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };

    println!(
        "fan-out to N AF_UNIX socketpairs, one reader thread each; {} CPUs; \
         {repeats} runs each (median), baseline and mux alternating",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "bytes per sink: {} MiB with 4 KiB writes (CMX_BENCH_BYTES), {} MiB with 1-byte writes (CMX_BENCH_BYTES_1B)",
        total_4k as f64 / MIB,
        total_1b as f64 / MIB
    );
    println!("MiB/s: bytes the frontend wrote per second (every sink receives all of them)");
    println!();
    println!(
        "{:>10} {:>3} {:>15} {:>15} {:>7}  {:>22}  {:>22}",
        "write size", "N", "baseline MiB/s", "mux MiB/s", "ratio", "baseline runs", "mux runs"
    );
    let mut all_ok = true;
    // "baseline" or "mux" runs only that one (for profiling); default both.
    let which = std::env::var("CMX_BENCH_ONLY").unwrap_or_default();
    let sizes = env_list("CMX_BENCH_SIZES", &[4096, 1]);
    let counts = env_list("CMX_BENCH_N", &[1, 2, 8]);
    for &size in &sizes {
        let total = if size == 1 { total_1b } else { total_4k };
        let src = Source::new(size, total);
        for &n in &counts {
            assert!(
                (1..=CMX_MAX_SINKS).contains(&n),
                "N must be 1 to {CMX_MAX_SINKS}"
            );
            let mut base = Vec::new();
            let mut mux = Vec::new();
            for rep in 0..repeats {
                let mbs = |d: Duration| total as f64 / MIB / d.as_secs_f64();
                let b = || mbs(run_baseline(n, &src));
                let m = || mbs(run_mux(n, &src));
                match which.as_str() {
                    "baseline" => base.push(b()),
                    "mux" => mux.push(m()),
                    _ if rep % 2 == 0 => {
                        base.push(b());
                        mux.push(m());
                    }
                    _ => {
                        mux.push(m());
                        base.push(b());
                    }
                }
            }
            let fmt = |v: &[f64]| {
                v.iter()
                    .map(|x| format!("{x:.3}"))
                    .collect::<Vec<_>>()
                    .join("/")
            };
            let (bs, ms) = (fmt(&base), fmt(&mux));
            let b = if base.is_empty() {
                f64::NAN
            } else {
                median(&mut base)
            };
            let m = if mux.is_empty() {
                f64::NAN
            } else {
                median(&mut mux)
            };
            let ratio = m / b;
            if ratio.is_finite() {
                all_ok &= ratio >= 0.9;
            }
            let label = if size == 1 {
                "1 B".to_owned()
            } else {
                format!("{} KiB", size / 1024)
            };
            println!("{label:>10} {n:>3} {b:>15.3} {m:>15.3} {ratio:>7.2}  {bs:>22}  {ms:>22}");
        }
    }
    println!();
    println!("readers received the right byte count in every run (checked)");
    println!(
        "1-byte writes: the mux queues bytes once a socket pushes back and flushes them \
         in large writes; the baseline makes one write(2) per byte per sink"
    );
    println!(
        "target ratio >= 0.9 everywhere: {}",
        if all_ok { "met" } else { "NOT met" }
    );
}
