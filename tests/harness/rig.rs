//! [`Rig`]: a [`Mux`] wired to socketpairs, and the `poll(2)` loop.

use super::*;

/// The far end of a sink: what a viewer (or a log file) would read.
pub struct Peer {
    pub fd: OwnedFd,
    /// Everything read so far from this connection.
    pub received: Vec<u8>,
    /// A paused peer is not read: its socket fills up.
    pub paused: bool,
    pub eof: bool,
    /// The sink's `delivered` counter when this peer was attached.
    pub base_delivered: u64,
}

pub struct Rig {
    pub mux: Mux,
    /// Our end of each sink's socketpair: the fd the sink is written to.
    pub ours: Vec<Option<OwnedFd>>,
    pub peers: Vec<Option<Peer>>,
    pub chunks: Chunks,
    /// `CMX_RESULT_WOULD_BLOCK` answers seen by [`Rig::pump`].
    pub would_blocks: u64,
    /// WRITABLE events already acted upon.
    woken_seen: u64,
    /// The frontend got `WOULD_BLOCK` and was not woken since.
    pub blocked: bool,
    /// Shrink every new socketpair's buffers.
    pub tiny_buffers: bool,
}

/// What a poll entry stands for.
#[derive(Clone, Copy, Debug)]
enum Slot {
    Sink(usize),
    Peer(usize),
}

/// Every byte written to a sink: the frontend's, stamps, drop notices and
/// skip markers.
pub fn written_to(st: &cmx_sink_stats) -> u64 {
    st.delivered + st.stamp_bytes + st.notice_bytes + st.skip_marker_bytes
}

/// Every test gives up after this long instead of hanging: 10 s, or
/// `CMX_TEST_DEADLINE_SECS` (slow runs such as valgrind's set it higher).
pub fn deadline() -> Duration {
    let secs = std::env::var("CMX_TEST_DEADLINE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    Duration::from_secs(secs)
}

impl Rig {
    /// A multiplexer with a fresh socketpair for every sink that starts open.
    pub fn new(cfg: &Cfg) -> Rig {
        Rig::build(cfg, false)
    }

    pub fn with_tiny_buffers(cfg: &Cfg) -> Rig {
        Rig::build(cfg, true)
    }

    /// Like [`Rig::new`], with another write function (for example one that
    /// injects faults and then calls [`sink_write`]).
    pub fn with_writer(cfg: &Cfg, write_fn: WriteFn) -> Rig {
        Rig::build_with(cfg, false, write_fn)
    }

    fn build(cfg: &Cfg, tiny_buffers: bool) -> Rig {
        Rig::build_with(cfg, tiny_buffers, sink_write)
    }

    fn build_with(cfg: &Cfg, tiny_buffers: bool, write_fn: WriteFn) -> Rig {
        ignore_sigpipe();
        let n = cfg.sinks.len();
        let mux = Mux::with_writer(cfg, write_fn).unwrap_or_else(|r| panic!("cmx_mux_new: {r:?}"));
        let mut rig = Rig {
            mux,
            ours: (0..n).map(|_| None).collect(),
            peers: (0..n).map(|_| None).collect(),
            chunks: Chunks::random(1500),
            would_blocks: 0,
            woken_seen: 0,
            blocked: false,
            tiny_buffers,
        };
        for (i, s) in cfg.sinks.iter().enumerate() {
            if s.open {
                rig.attach(i);
            }
        }
        rig
    }

    /// Attaches a new sink (`cmx_mux_attach()`) on a new socketpair, whose
    /// peer starts reading at once unless `paused`; returns its index.
    pub fn attach_new(&mut self, cfg: &cmx_sink_config, paused: bool) -> Result<usize, cmx_result> {
        let slot = self.mux.next_slot();
        if slot >= CMX_MAX_SINKS {
            // Full: what the library says about it is the test's business.
            return self.mux.attach_sink(cfg, -1);
        }
        if slot >= self.ours.len() {
            self.ours.resize_with(slot + 1, || None);
            self.peers.resize_with(slot + 1, || None);
            self.mux.ctx.fds.resize(slot + 1, -1);
            self.mux.ctx.watching.resize(slot + 1, false);
        }
        self.attach(slot);
        self.pause(slot, paused);
        let fd = self.mux.ctx.fds[slot];
        match self.mux.attach_sink(cfg, fd) {
            Ok(i) => Ok(i),
            Err(r) => {
                self.close_ours(slot);
                self.peers[slot] = None;
                Err(r)
            }
        }
    }

    /// Connects a new socketpair to sink `i` (the library is not told: send
    /// `CMX_SINK_EVENT_OPENED` for a sink that was closed).
    pub fn attach(&mut self, i: usize) {
        let (ours, theirs) = socketpair();
        set_nonblocking(ours.as_raw_fd(), true);
        set_nonblocking(theirs.as_raw_fd(), true);
        if self.tiny_buffers {
            shrink_socket_buffers(ours.as_raw_fd());
            shrink_socket_buffers(theirs.as_raw_fd());
        }
        self.mux.ctx.fds[i] = ours.as_raw_fd();
        self.ours[i] = Some(ours);
        self.peers[i] = Some(Peer {
            fd: theirs,
            received: Vec::new(),
            paused: false,
            eof: false,
            base_delivered: self.mux.try_stats(i).map_or(0, |st| written_to(&st)),
        });
    }

    /// Makes `fd` (a regular file, or the write end of a pipe whose reader is
    /// somewhere else) sink `i`'s fd, with no peer to read it. The library is
    /// not told: send `CMX_SINK_EVENT_OPENED` for a sink that was closed.
    pub fn attach_fd(&mut self, i: usize, fd: OwnedFd) {
        self.mux.ctx.fds[i] = fd.as_raw_fd();
        self.ours[i] = Some(fd);
        self.peers[i] = None;
    }

    /// Reads everything that is already readable at sink `i`'s peer (all
    /// that was delivered to it so far) and returns what it has read in all.
    pub fn collect(&mut self, i: usize) -> &[u8] {
        let p = self.peers[i].as_mut().expect("no peer");
        if !p.eof && !read_available(p.fd.as_raw_fd(), &mut p.received) {
            p.eof = true;
        }
        &p.received
    }

    /// Closes the viewer's end of sink `i` (our end stays: writes get EPIPE).
    /// Returns what it had read.
    pub fn hang_up(&mut self, i: usize) -> Vec<u8> {
        let _no_fork = no_fork_in_flight();
        self.peers[i].take().expect("no peer").received
    }

    /// Closes our end of sink `i` too, as a backend does after a hang-up.
    pub fn close_ours(&mut self, i: usize) {
        let _no_fork = no_fork_in_flight();
        self.mux.ctx.fds[i] = -1;
        self.ours[i] = None;
    }

    pub fn peer(&self, i: usize) -> &Peer {
        self.peers[i].as_ref().expect("no peer")
    }

    pub fn received(&self, i: usize) -> &[u8] {
        &self.peer(i).received
    }

    pub fn pause(&mut self, i: usize, paused: bool) {
        self.peers[i].as_mut().expect("no peer").paused = paused;
    }

    fn note_woken(&mut self) {
        let w = self.mux.ctx.woken;
        if w != self.woken_seen {
            self.woken_seen = w;
            self.blocked = false;
        }
    }

    /// One round of the event loop: poll the watched sinks for POLLOUT and
    /// the unpaused peers for POLLIN, for at most `timeout_ms`, and act on
    /// what is ready. Returns whether anything was.
    pub fn service(&mut self, timeout_ms: i32) -> bool {
        let mut pfds = Vec::new();
        let mut slots = Vec::new();
        for i in 0..self.mux.n_sinks() {
            if self.mux.ctx.watching[i] {
                match &self.ours[i] {
                    Some(fd) => {
                        pfds.push(libc::pollfd {
                            fd: fd.as_raw_fd(),
                            events: libc::POLLOUT,
                            revents: 0,
                        });
                        slots.push(Slot::Sink(i));
                    }
                    // Watched but nothing to poll: tell it so that it fails.
                    None => self.mux.sink_writable(i),
                }
            }
            if let Some(p) = &self.peers[i] {
                if !p.paused && !p.eof {
                    pfds.push(libc::pollfd {
                        fd: p.fd.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    });
                    slots.push(Slot::Peer(i));
                }
            }
        }
        // SAFETY: `pfds` is a valid array of `pfds.len()` pollfds.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
        if n < 0 && errno() == libc::EINTR {
            return false;
        }
        check(n, "poll");
        let mut any = false;
        for (pfd, slot) in pfds.iter().zip(&slots) {
            if pfd.revents == 0 {
                continue;
            }
            any = true;
            match *slot {
                Slot::Sink(i) => self.mux.sink_writable(i),
                Slot::Peer(i) => {
                    let p = self.peers[i].as_mut().unwrap();
                    if !read_available(p.fd.as_raw_fd(), &mut p.received) {
                        p.eof = true;
                    }
                }
            }
        }
        self.note_woken();
        any
    }

    /// Offers `data` through `cmx_mux_write` in chunks, servicing the sockets
    /// between writes. After `CMX_RESULT_WOULD_BLOCK` it does not write again
    /// until `CMX_FRONTEND_EVENT_WRITABLE` (a frontend that waits for its
    /// wake-up, as QEMU's serial port does). Returns how many bytes were accepted: all of
    /// them, or fewer if the writer stayed blocked for `stall` with nothing
    /// happening.
    pub fn pump(&mut self, data: &[u8], stall: Duration) -> usize {
        let start = Instant::now();
        let mut off = 0;
        let mut idle_since = Instant::now();
        while off < data.len() {
            assert!(
                start.elapsed() < deadline(),
                "pump: no end after {:?} ({off} of {} bytes accepted)",
                deadline(),
                data.len()
            );
            if !self.blocked {
                let len = self.chunks.next_len().min(data.len() - off);
                let (r, acc) = self.mux.write(&data[off..off + len]);
                match r {
                    cmx_result::Ok => {
                        assert!(acc >= 1 && acc <= len, "accepted {acc} of {len}");
                        off += acc;
                    }
                    cmx_result::WouldBlock => {
                        // Out-parameters are written only on success.
                        assert_eq!(acc, usize::MAX, "WOULD_BLOCK but *accepted written");
                        self.would_blocks += 1;
                        self.blocked = true;
                        self.note_woken();
                        idle_since = Instant::now();
                    }
                    r => panic!("cmx_mux_write: {r:?}"),
                }
            }
            let timeout = if self.blocked { 20 } else { 0 };
            if self.service(timeout) || !self.blocked {
                idle_since = Instant::now();
            } else if idle_since.elapsed() >= stall {
                return off;
            }
        }
        off
    }

    /// Like [`Rig::pump`] but everything must be accepted within [`deadline()`].
    #[track_caller]
    pub fn pump_all(&mut self, data: &[u8]) {
        let n = self.pump(data, deadline());
        assert_eq!(n, data.len(), "the writer stayed blocked");
    }

    /// Services the sockets until every open sink with an unpaused peer has
    /// an empty queue and its peer has read all that was delivered to it.
    #[track_caller]
    pub fn drain(&mut self) {
        let start = Instant::now();
        loop {
            let done = (0..self.mux.n_sinks()).all(|i| {
                match (self.mux.try_stats(i), &self.peers[i]) {
                    (Some(st), Some(p))
                        if !p.paused && [OPEN, DETACHING, DETACHED].contains(&st.state) =>
                    {
                        // Stamps, notices and markers count as received too.
                        st.queued == 0
                            && p.received.len() as u64 == written_to(&st) - p.base_delivered
                    }
                    _ => true,
                }
            });
            if done {
                return;
            }
            if start.elapsed() > deadline() {
                let st: Vec<_> = (0..self.mux.n_sinks()).map(|i| self.mux.stats(i)).collect();
                panic!("drain: no end after {:?}; stats {st:#?}", deadline());
            }
            self.service(20);
        }
    }

    /// Hands every peer to a thread that reads it (blocking) until end of
    /// file and returns what it read. Use [`Rig::flush_and_close`] to end them.
    pub fn spawn_readers(&mut self) -> Vec<Option<JoinHandle<Vec<u8>>>> {
        self.peers
            .iter_mut()
            .map(|p| {
                let p = p.take()?;
                set_nonblocking(p.fd.as_raw_fd(), false);
                Some(std::thread::spawn(move || {
                    let mut out = p.received;
                    let mut buf = vec![0u8; 65536];
                    loop {
                        // SAFETY: `buf` is valid for its length.
                        let n = unsafe {
                            libc::read(p.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
                        };
                        if n < 0 && errno() == libc::EINTR {
                            continue;
                        }
                        assert!(n >= 0, "reader: {}", std::io::Error::last_os_error());
                        if n == 0 {
                            return out;
                        }
                        out.extend_from_slice(&buf[..n as usize]);
                    }
                }))
            })
            .collect()
    }

    /// Services the watched sinks until no sink has anything queued, then
    /// closes our ends so that reader threads see end of file.
    pub fn flush_and_close(&mut self) {
        let start = Instant::now();
        while (0..self.mux.n_sinks()).any(|i| self.mux.stats(i).queued > 0) {
            assert!(start.elapsed() < deadline(), "flush: no end");
            self.service(20);
        }
        for i in 0..self.mux.n_sinks() {
            self.close_ours(i);
        }
    }
}
