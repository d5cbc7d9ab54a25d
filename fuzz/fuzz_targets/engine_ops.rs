//! The engine driven by arbitrary operation sequences, checked after every
//! step against the same model (and invariants) as the property test.
#![no_main]

use chardev_multiplex::engine::model::{Behaviour, Model, Op};
use chardev_multiplex::engine::{Config, DropUnit, Overflow, SinkConfig, MAX_SINKS};
use libfuzzer_sys::fuzz_target;

#[path = "bytes.rs"]
mod bytes;
use bytes::Bytes;

fn behaviour(b: &mut Bytes) -> Behaviour {
    let k = b.small();
    match b.small() % 5 {
        0 => Behaviour::Open,
        1 => Behaviour::Stalled,
        2 => Behaviour::Partial(k % 17),
        3 => Behaviour::Budget(k),
        _ => Behaviour::FailOnce([32, 5, 28, 104][k % 4]),
    }
}

/// A sink configuration from one byte: bit 0 drop, bit 1 open, bit 2 lines,
/// bit 3 notice (on a block sink too: refused), bit 5 stamps.
fn sink_config(x: usize) -> SinkConfig {
    SinkConfig {
        overflow: if x & 1 == 1 {
            Overflow::Drop
        } else {
            Overflow::Block
        },
        open: x & 2 != 0,
        drop_unit: if x & 4 != 0 {
            DropUnit::Lines
        } else {
            DropUnit::Bytes
        },
        drop_notice: x & 8 != 0,
        timestamp: x & 32 != 0,
    }
}

fn op(b: &mut Bytes) -> Option<Op> {
    let tag = b.byte()?;
    let sink = b.small();
    Some(match tag % 16 {
        14 => Op::ResetHead,
        15 => Op::Migrate,
        10 => Op::SetInput((sink < 200).then_some(sink)),
        11 => Op::Attach {
            config: sink_config(sink),
            input: sink & 16 != 0,
        },
        12 => Op::Detach(sink),
        13 => Op::Release(sink),
        0 => Op::Write(1 + sink * 3),
        7 => Op::WriteNow(1 + sink * 3),
        8 => Op::Advance(sink as u64),
        9 => Op::Flush,
        1 => Op::Behave(sink, behaviour(b)),
        2 => Op::Writable(sink),
        3 => Op::Open(sink),
        4 => Op::Close(sink),
        5 => Op::Input(sink, b.small(), b.small()),
        _ => Op::Break(sink),
    })
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let n = 1 + b.small() % MAX_SINKS;
    let (drop_mask, open_mask, lines_mask) = (b.small(), b.small(), b.small());
    let stamp_mask = b.small();
    let cap = 1 + (b.small() | b.small() << 8) % 4096;
    let replay = b.small() * cap / 255;
    let input = b.byte().and_then(|i| (i < 128).then_some(i as usize % n));
    let config = Config {
        sinks: (0..n)
            .map(|i| SinkConfig {
                overflow: if drop_mask >> i & 1 == 1 {
                    Overflow::Drop
                } else {
                    Overflow::Block
                },
                open: open_mask >> i & 1 == 1,
                drop_unit: if lines_mask >> i & 1 == 1 {
                    DropUnit::Lines
                } else {
                    DropUnit::Bytes
                },
                // Notices on the drop sinks of the even-numbered masks.
                drop_notice: drop_mask >> i & 1 == 1 && lines_mask & 0x80 == 0,
                timestamp: stamp_mask >> i & 1 == 1,
            })
            .collect(),
        input,
        queue_capacity: cap,
        replay_capacity: replay,
        // Mostly small; now and then larger than the queues.
        replay_head_capacity: match b.small() % 4 {
            0 => 0,
            1 => (b.small() | b.small() << 8) % 8192,
            _ => b.small(),
        },
        coalesce_ns: b.small() as u64 % 64,
    };
    let mut model = Model::new(config);
    while let Some(op) = op(&mut b) {
        model.step(op);
    }
    model.drain();
});
