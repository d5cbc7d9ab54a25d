//! Sequence-numbered data, byte-exact comparisons and write-size generators.

/// The first `len` bytes of the stream `00000000\n00000001\n...`: every
/// 9-byte record carries its own sequence number, so a lost, repeated or
/// reordered byte shows, and any 17 consecutive bytes say where they are.
pub fn stream(len: usize) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(len + 9);
    let mut k: u32 = 0;
    while out.len() < len {
        for shift in (0..8).rev() {
            out.push(HEX[((k >> (shift * 4)) & 0xf) as usize]);
        }
        out.push(b'\n');
        k += 1;
    }
    out.truncate(len);
    out
}

/// Asserts byte equality, reporting the first difference instead of dumping
/// megabytes.
#[track_caller]
pub fn assert_bytes_eq(what: &str, got: &[u8], want: &[u8]) {
    if got == want {
        return;
    }
    let first = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| got.len().min(want.len()));
    let show = |s: &[u8]| {
        let lo = first.saturating_sub(12);
        let hi = (first + 12).min(s.len());
        String::from_utf8_lossy(&s[lo.min(hi)..hi]).into_owned()
    };
    panic!(
        "{what}: got {} bytes, want {}; first difference at offset {first}: \
         got {:?}, want {:?}",
        got.len(),
        want.len(),
        show(got),
        show(want)
    );
}

/// Asserts that `got` is `stream` with zero or more runs cut out, that is, a
/// concatenation of increasing, non-overlapping slices of `stream`, and
/// returns those slices as (start, end) ranges. This is stronger than "an
/// in-order subsequence" (which any short string of hex digits would be).
#[track_caller]
pub fn assert_segments_of(what: &str, got: &[u8], stream: &[u8]) -> Vec<(usize, usize)> {
    let mut segs: Vec<(usize, usize)> = Vec::new();
    let (mut i, mut p) = (0usize, 0usize);
    while i < got.len() {
        if p < stream.len() && got[i] == stream[p] && !segs.is_empty() {
            i += 1;
            p += 1;
            segs.last_mut().unwrap().1 = p;
            continue;
        }
        // A gap (or the start): find where the next bytes of `got` continue,
        // with the longest window that still matches (windows of 17 or more
        // bytes hold a whole record, so they match in one place only).
        // A shorter window may match too early, which is harmless: the
        // search only ever moves forward, and the true place is further on.
        let found = [32usize, 17, 9, 4, 1].iter().find_map(|&w| {
            let win = &got[i..(i + w).min(got.len())];
            stream[p..]
                .windows(win.len())
                .position(|s| s == win)
                .map(|q| p + q)
        });
        let Some(q) = found else {
            panic!(
                "{what}: byte {i} of {} ({:?}...) does not continue the stream after offset {p}",
                got.len(),
                String::from_utf8_lossy(&got[i..(i + 18).min(got.len())])
            );
        };
        segs.push((q, q));
        p = q;
    }
    segs
}

/// Deterministic chunk sizes (xorshift), so failures reproduce.
#[derive(Clone, Debug)]
pub enum Chunks {
    Fixed(usize),
    /// Uniform-ish in 1..=max.
    Random {
        max: usize,
        state: u64,
    },
}

impl Chunks {
    pub fn random(max: usize) -> Chunks {
        Chunks::Random {
            max,
            state: 0x9E37_79B9_7F4A_7C15,
        }
    }

    pub fn next_len(&mut self) -> usize {
        match self {
            Chunks::Fixed(n) => *n,
            Chunks::Random { max, state } => {
                *state ^= *state << 13;
                *state ^= *state >> 7;
                *state ^= *state << 17;
                (*state % *max as u64) as usize + 1
            }
        }
    }
}

/// The stamp a `timestamp` sink puts before a line that started at
/// `wall_ns` (ns since the Unix epoch, `u64::MAX` unknown), worked out with
/// a calendar walked day by day (not the library's arithmetic).
pub fn stamp_of(wall_ns: u64) -> Vec<u8> {
    if wall_ns == u64::MAX {
        return b"????-??-??T??:??:??.??????Z ".to_vec();
    }
    let leap = |y: u64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let secs = wall_ns / 1_000_000_000;
    let (mut days, mut year) = (secs / 86_400, 1970u64);
    while days >= 365 + u64::from(leap(year)) {
        days -= 365 + u64::from(leap(year));
        year += 1;
    }
    let months = [
        31,
        28 + u64::from(leap(year)),
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut month = 0;
    while days >= months[month] {
        days -= months[month];
        month += 1;
    }
    let sod = secs % 86_400;
    format!(
        "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z ",
        month + 1,
        days + 1,
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        wall_ns % 1_000_000_000 / 1000
    )
    .into_bytes()
}

/// `data` as a `timestamp` sink gets it, when its byte `k` came in a write
/// made at `wall(k)`: each line preceded by the stamp of its first byte.
pub fn stamped(data: &[u8], wall: impl Fn(usize) -> u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 4);
    for (k, &b) in data.iter().enumerate() {
        if k == 0 || data[k - 1] == b'\n' {
            out.extend(stamp_of(wall(k)));
        }
        out.push(b);
    }
    out
}

/// The replay skip marker for `n` bytes.
pub fn skip_marker(n: u64) -> Vec<u8> {
    let unit = if n == 1 { "byte" } else { "bytes" };
    format!("\r\n[multiplex: {n} {unit} skipped]\r\n").into_bytes()
}
