//! Validated configuration of a multiplexer.

use core::fmt;

/// Most sinks (backends) one multiplexer serves.
pub const MAX_SINKS: usize = 8;
/// Queue capacity per sink when the caller has no better idea.
pub const DEFAULT_QUEUE_CAPACITY: usize = 64 * 1024;
/// Largest queue (and replay tail and head) capacity accepted: larger values are a typo, not a need.
pub const MAX_QUEUE_CAPACITY: usize = 64 * 1024 * 1024;
/// Longest coalescing window accepted (100 ms): longer would delay output
/// enough for a person at a console to notice.
pub const MAX_COALESCE_NS: u64 = 100_000_000;

/// What a sink does when its queue is full. The default, `Drop`, is the
/// one that can never hold the guest back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overflow {
    /// Never slows the frontend: the oldest queued bytes are discarded and counted.
    #[default]
    Drop,
    /// Lossless: the frontend is told "would block" until the sink drains.
    /// A stalled `Block` sink stops the frontend's output.
    Block,
}

/// What a `Drop` sink discards when its queue is full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DropUnit {
    /// The oldest whole lines: the sink sees complete lines in order, never
    /// the end of one spliced onto the start of another. A line longer than
    /// the queue falls back to bytes. The default.
    #[default]
    Lines,
    /// The oldest bytes, wherever they fall: a line (or an escape sequence)
    /// may be cut in the middle.
    Bytes,
}

/// One sink's configuration. The default is the safe one: a closed `Drop`
/// sink in lines mode, without a notice or stamps (the C ABI's all-zero
/// sink configuration).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkConfig {
    pub overflow: Overflow,
    /// Whether the sink is already open (connected) when the multiplexer is created.
    pub open: bool,
    /// What a `Drop` sink discards (ignored for `Block` sinks).
    pub drop_unit: DropUnit,
    /// A `Drop` sink that catches up after dropping gets one notice line,
    /// `\r\n[multiplex: N bytes dropped]\r\n`, not counted as output.
    /// Refused on a `Block` sink, whose output stays byte-exact.
    pub drop_notice: bool,
    /// Every line the sink receives starts with the UTC wall-clock time its
    /// first byte came from the frontend, `YYYY-MM-DDTHH:MM:SS.uuuuuuZ `
    /// (see [`Mux::write_at_wall`](super::Mux::write_at_wall)); counted in
    /// `stamps` and `stamp_bytes`, not in `offered`/`delivered`. Other
    /// sinks see the frontend's bytes unchanged.
    pub timestamp: bool,
}

impl SinkConfig {
    /// A sink with this policy, the default drop unit (lines) and no notice.
    pub fn new(overflow: Overflow, open: bool) -> Self {
        SinkConfig {
            overflow,
            open,
            ..SinkConfig::default()
        }
    }

    /// Checks the rules of one sink (`index` names it in the error).
    pub fn validate(&self, index: usize) -> Result<(), ConfigError> {
        if self.drop_notice && self.overflow == Overflow::Block {
            return Err(ConfigError::NoticeOnBlockSink(index));
        }
        Ok(())
    }
}

/// A multiplexer's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub sinks: Vec<SinkConfig>,
    /// Index of the sink whose input reaches the frontend, if any.
    pub input: Option<usize>,
    /// Bytes each sink may queue.
    pub queue_capacity: usize,
    /// Bytes of recent output replayed to a sink when it opens (0: off):
    /// the replay tail.
    pub replay_capacity: usize,
    /// Bytes of the first output (since creation or [`Mux::reset_head`](super::Mux::reset_head))
    /// kept for replay besides the tail (0: off; at most [`MAX_QUEUE_CAPACITY`]).
    pub replay_head_capacity: usize,
    /// Coalescing window for [`Mux::write_at`](super::Mux::write_at), in the
    /// caller's clock units (nanoseconds by convention); 0 turns coalescing off.
    pub coalesce_ns: u64,
}

impl Config {
    /// A configuration with `n` open `Block` sinks, the last one the input source,
    /// the default queue and no replay.
    pub fn new(n: usize) -> Self {
        Config {
            sinks: vec![SinkConfig::new(Overflow::Block, true); n],
            input: n.checked_sub(1),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            replay_capacity: 0,
            replay_head_capacity: 0,
            coalesce_ns: 0,
        }
    }

    /// Checks every rule a multiplexer relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let n = self.sinks.len();
        if n == 0 {
            return Err(ConfigError::NoSinks);
        }
        if n > MAX_SINKS {
            return Err(ConfigError::TooManySinks(n));
        }
        for (i, s) in self.sinks.iter().enumerate() {
            s.validate(i)?;
        }
        if let Some(i) = self.input {
            if i >= n {
                return Err(ConfigError::InputOutOfRange { input: i, sinks: n });
            }
        }
        if self.queue_capacity == 0 {
            return Err(ConfigError::ZeroQueueCapacity);
        }
        if self.queue_capacity > MAX_QUEUE_CAPACITY {
            return Err(ConfigError::QueueCapacityTooLarge(self.queue_capacity));
        }
        if self.replay_capacity > self.queue_capacity {
            return Err(ConfigError::ReplayTooLarge {
                replay: self.replay_capacity,
                queue: self.queue_capacity,
            });
        }
        if self.replay_head_capacity > MAX_QUEUE_CAPACITY {
            return Err(ConfigError::ReplayHeadTooLarge(self.replay_head_capacity));
        }
        if self.coalesce_ns > MAX_COALESCE_NS {
            return Err(ConfigError::CoalesceTooLong(self.coalesce_ns));
        }
        Ok(())
    }
}

/// Why a configuration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    NoSinks,
    TooManySinks(usize),
    InputOutOfRange {
        input: usize,
        sinks: usize,
    },
    ZeroQueueCapacity,
    QueueCapacityTooLarge(usize),
    ReplayTooLarge {
        replay: usize,
        queue: usize,
    },
    CoalesceTooLong(u64),
    /// The replay head is larger than [`MAX_QUEUE_CAPACITY`].
    ReplayHeadTooLarge(usize),
    /// A drop notice was asked for on this `Block` sink.
    NoticeOnBlockSink(usize),
    /// The queues (this many bytes in all) could not be allocated.
    OutOfMemory(usize),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ConfigError::NoSinks => write!(f, "a multiplexer needs at least one sink"),
            ConfigError::TooManySinks(n) => {
                write!(f, "{n} sinks given, at most {MAX_SINKS} are supported")
            }
            ConfigError::InputOutOfRange { input, sinks } => {
                write!(f, "input sink {input} does not exist ({sinks} sinks)")
            }
            ConfigError::ZeroQueueCapacity => write!(f, "queue capacity must not be zero"),
            ConfigError::QueueCapacityTooLarge(n) => write!(
                f,
                "queue capacity {n} is larger than the maximum {MAX_QUEUE_CAPACITY}"
            ),
            ConfigError::ReplayTooLarge { replay, queue } => write!(
                f,
                "replay capacity {replay} is larger than the queue capacity {queue}"
            ),
            ConfigError::ReplayHeadTooLarge(n) => write!(
                f,
                "replay head capacity {n} is larger than the maximum {MAX_QUEUE_CAPACITY}"
            ),
            ConfigError::CoalesceTooLong(ns) => write!(
                f,
                "coalescing window {ns} ns is longer than the maximum {MAX_COALESCE_NS} ns"
            ),
            ConfigError::NoticeOnBlockSink(i) => write!(
                f,
                "sink {i}: a drop notice needs overflow drop (a block sink drops nothing)"
            ),
            ConfigError::OutOfMemory(n) => write!(f, "cannot allocate {n} bytes of queues"),
        }
    }
}

impl std::error::Error for ConfigError {}
