//! Property test: random operation sequences against the model in
//! [`crate::engine::model`].

use crate::engine::model::{Behaviour, Model, Op};
use crate::engine::*;
use proptest::prelude::*;

fn behaviour() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        3 => Just(Behaviour::Open),
        2 => Just(Behaviour::Stalled),
        3 => (0usize..9).prop_map(Behaviour::Partial),
        3 => (0usize..30).prop_map(Behaviour::Budget),
        1 => prop_oneof![Just(32), Just(5), Just(28)].prop_map(Behaviour::FailOnce),
    ]
}

fn sink_config() -> impl Strategy<Value = SinkConfig> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(drop, open, lines, notice, timestamp)| SinkConfig {
            overflow: if drop {
                Overflow::Drop
            } else {
                Overflow::Block
            },
            open,
            drop_unit: if lines {
                DropUnit::Lines
            } else {
                DropUnit::Bytes
            },
            // Mostly valid; sometimes a notice on a block sink (refused).
            drop_notice: notice && (drop || lines),
            timestamp,
        })
}

fn op() -> impl Strategy<Value = Op> {
    let sink = 0usize..MAX_SINKS;
    prop_oneof![
        6 => (1usize..40).prop_map(Op::Write),
        1 => (1usize..40).prop_map(Op::WriteNow),
        3 => (0u64..25).prop_map(Op::Advance),
        1 => Just(Op::Flush),
        3 => (sink.clone(), behaviour()).prop_map(|(s, b)| Op::Behave(s, b)),
        4 => sink.clone().prop_map(Op::Writable),
        1 => sink.clone().prop_map(Op::Open),
        1 => sink.clone().prop_map(Op::Close),
        1 => (sink.clone(), 0usize..20, 0usize..20).prop_map(|(s, l, r)| Op::Input(s, l, r)),
        1 => sink.clone().prop_map(Op::Break),
        1 => proptest::option::of(sink.clone()).prop_map(Op::SetInput),
        1 => (sink_config(), any::<bool>()).prop_map(|(config, input)| Op::Attach { config, input }),
        1 => sink.clone().prop_map(Op::Detach),
        1 => sink.prop_map(Op::Release),
        1 => Just(Op::ResetHead),
        1 => Just(Op::Migrate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]
    #[test]
    fn engine_keeps_its_promises(
        n in 1usize..=MAX_SINKS,
        sinks in proptest::collection::vec(sink_config(), MAX_SINKS),
        cap in prop_oneof![1usize..48, 8usize..48],
        replay_pct in 0usize..=100,
        head in prop_oneof![Just(0usize), 1usize..64],
        input in proptest::option::of(0usize..MAX_SINKS),
        coalesce in prop_oneof![Just(0u64), 1u64..20],
        ops in proptest::collection::vec(op(), 0..160),
    ) {
        let replay = cap * replay_pct / 100;
        let config = Config {
            sinks: sinks[..n]
                .iter()
                .map(|s| SinkConfig {
                    drop_notice: s.drop_notice && s.overflow == Overflow::Drop,
                    ..*s
                })
                .collect(),
            input: input.map(|i| i % n),
            queue_capacity: cap,
            replay_capacity: replay,
            replay_head_capacity: head,
            coalesce_ns: coalesce,
        };
        let mut model = Model::new(config);
        for op in ops {
            model.step(op);
        }
        model.drain();
    }
}
