//! What a sink is written, as the model sees it: the frontend's bytes and
//! the texts the engine adds (line stamps, drop notices, skip markers),
//! rendered from what the model expects and parsed back from what a sink
//! received. Written from the documentation, not from the engine's code:
//! stamps are `YYYY-MM-DDTHH:MM:SS.uuuuuuZ ` (or all `?` when unknown),
//! notices and markers `\r\n[multiplex: N bytes dropped|skipped]\r\n`.

use core::fmt;

#[cfg(test)]
use super::calendar::date_from_days;
use super::calendar::days_from_date;

/// One element of what a sink was written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// A byte from the frontend.
    Guest(u8),
    /// A line stamp: ns since the Unix epoch, `None` when unknown (the
    /// model knows times to the microsecond only).
    Stamp(Option<u64>),
    /// A drop notice for this many bytes.
    Notice(u64),
    /// A skip marker for this many bytes.
    Marker(u64),
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Token::Guest(b) => write!(f, "{:?}", b as char),
            Token::Stamp(Some(t)) => write!(f, "<{}>", t / 1000),
            Token::Stamp(None) => f.write_str("<?>"),
            Token::Notice(n) => write!(f, "[dropped {n}]"),
            Token::Marker(n) => write!(f, "[skipped {n}]"),
        }
    }
}

/// A stamp's text, by the naive calendar (not the engine's
/// `civil_from_days`).
#[cfg(test)]
pub fn stamp_text(wall_ns: Option<u64>) -> Vec<u8> {
    let Some(ns) = wall_ns else {
        return b"????-??-??T??:??:??.??????Z ".to_vec();
    };
    let secs = ns / 1_000_000_000;
    let (year, month, day) = date_from_days(secs / 86_400);
    let sod = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z ",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        ns % 1_000_000_000 / 1000
    )
    .into_bytes()
}

fn text_line(n: u64, what: &str) -> Vec<u8> {
    let unit = if n == 1 { "byte" } else { "bytes" };
    format!("\r\n[multiplex: {n} {unit} {what}]\r\n").into_bytes()
}

/// How many bytes `tokens` are.
pub fn len_of(tokens: &[Token]) -> usize {
    tokens
        .iter()
        .map(|t| match *t {
            Token::Guest(_) => 1,
            Token::Stamp(_) => 28,
            Token::Notice(n) => text_line(n, "dropped").len(),
            Token::Marker(n) => text_line(n, "skipped").len(),
        })
        .sum()
}

/// The bytes of `tokens`.
#[cfg(test)]
pub fn bytes_of(tokens: &[Token]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in tokens {
        match *t {
            Token::Guest(b) => out.push(b),
            Token::Stamp(w) => out.extend(stamp_text(w)),
            Token::Notice(n) => out.extend(text_line(n, "dropped")),
            Token::Marker(n) => out.extend(text_line(n, "skipped")),
        }
    }
    out
}

/// A stamp at the start of `b`, if there is one (`Token::Stamp`, with the
/// time it says to the microsecond, `None` for the unknown stamp).
fn parse_stamp(b: &[u8]) -> Option<Token> {
    let s = b.get(..28)?;
    if s == b"????-??-??T??:??:??.??????Z " {
        return Some(Token::Stamp(None));
    }
    let shape = b"dddd-dd-ddTdd:dd:dd.ddddddZ ";
    let fits = s.iter().zip(shape).all(|(&c, &k)| {
        if k == b'd' {
            c.is_ascii_digit()
        } else {
            c == k
        }
    });
    if !fits {
        return None;
    }
    let num = |r: core::ops::Range<usize>| -> u64 {
        s[r].iter().fold(0, |v, &c| v * 10 + u64::from(c - b'0'))
    };
    let days = days_from_date(num(0..4), num(5..7), num(8..10));
    let secs = days * 86_400 + num(11..13) * 3600 + num(14..16) * 60 + num(17..19);
    Some(Token::Stamp(Some(
        secs * 1_000_000_000 + num(20..26) * 1000,
    )))
}

/// A notice or marker at the start of `b`: (token, its length).
fn parse_text(b: &[u8]) -> Option<(Token, usize)> {
    const START: &[u8] = b"\r\n[multiplex: ";
    let rest = b.strip_prefix(START)?;
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    let n: u64 = core::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    for (what, make) in [
        ("dropped", Token::Notice as fn(u64) -> Token),
        ("skipped", Token::Marker as fn(u64) -> Token),
    ] {
        let text = text_line(n, what);
        if b.starts_with(&text) {
            return Some((make(n), text.len()));
        }
    }
    None
}

/// `got` as tokens (stamps only if `stamped`), of which `guests` are the
/// frontend's bytes: what is left at the end is the start of a text still
/// being written (a stamp, a notice or a marker), and is left out.
pub fn parse(got: &[u8], stamped: bool, guests: usize) -> Vec<Token> {
    let mut out = Vec::with_capacity(got.len());
    let mut i = 0;
    let mut seen = 0;
    while i < got.len() {
        let b = &got[i..];
        if stamped {
            if let Some(t) = parse_stamp(b) {
                out.push(t);
                i += 28;
                continue;
            }
        }
        if let Some((t, len)) = parse_text(b) {
            out.push(t);
            i += len;
            continue;
        }
        if seen == guests {
            break;
        }
        out.push(Token::Guest(b[0]));
        seen += 1;
        i += 1;
    }
    let tail = &got[i..];
    if !tail.is_empty() {
        let stamp_like = tail
            .iter()
            .zip(b"dddd-dd-ddTdd:dd:dd.ddddddZ ")
            .all(|(&c, &k)| {
                if k == b'd' {
                    c.is_ascii_digit() || c == b'?'
                } else {
                    c == k
                }
            });
        let text_like = b"\r\n[multiplex: ".starts_with(tail)
            || (tail.starts_with(b"\r\n[multiplex: ") && tail.len() < 64);
        assert!(
            (stamped && tail.len() < 28 && stamp_like) || text_like,
            "an unfinished text is not one: {:?}",
            String::from_utf8_lossy(tail)
        );
    }
    out
}

/// The frontend's bytes of `tokens`.
pub fn guest(tokens: &[Token]) -> Vec<u8> {
    tokens
        .iter()
        .filter_map(|t| match *t {
            Token::Guest(b) => Some(b),
            _ => None,
        })
        .collect()
}

/// Whether two tokens agree: equal, or (with `forgetful`) a stamp that
/// forgot its time where the other knows it.
pub fn agree(got: Token, want: Token, forgetful: bool) -> bool {
    got == want || (forgetful && matches!((got, want), (Token::Stamp(None), Token::Stamp(_))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let toks = [
            Token::Stamp(Some(1_796_580_664_783_070_000)),
            Token::Guest(b'a'),
            Token::Marker(3),
            Token::Stamp(None),
            Token::Guest(b'\n'),
            Token::Notice(1),
        ];
        let bytes = bytes_of(&toks);
        assert_eq!(len_of(&toks), bytes.len());
        assert!(bytes.starts_with(b"2026-12-06T18:11:04.783070Z a\r\n[multiplex: 3 bytes skipped]"));
        assert_eq!(parse(&bytes, true, 2), toks);
        assert_eq!(parse(&bytes[..bytes.len() - 5], true, 2), toks[..5]);
        assert_eq!(parse(&bytes[..20], true, 0), []);
        assert_eq!(
            parse(&bytes, false, usize::MAX)[..2],
            [Token::Guest(b'2'), Token::Guest(b'0')]
        );
    }
}
