//! Every error type is a `std::error::Error` with a message (issue 17,
//! item 5), and the defaults are the safe choices (item 8).

use super::{new_mux, Pumped};
use crate::engine::model::{stream, Behaviour, ScriptIo};
use crate::engine::*;

fn message<E: std::error::Error>(e: E) -> String {
    let text = e.to_string();
    assert!(!text.trim().is_empty(), "{e:?} has no message");
    text
}

#[test]
fn every_error_type_displays_a_message() {
    let texts = [
        message(WouldBlock),
        message(NoSuchSink(3)),
        message(TransmitError::NoSuchSink(3)),
        message(TransmitError::NotOffered(4)),
        message(AttachError::Full),
        message(AttachError::OutOfMemory),
        message(AttachError::Config(ConfigError::NoticeOnBlockSink(5))),
        message(DetachError::NoSuchSink(6)),
        message(DetachError::LastSink(7)),
        message(ConfigError::NoSinks),
        message(ConfigError::OutOfMemory(1 << 20)),
    ];
    // The sink an error names is in its message.
    for (text, sink) in [(&texts[1], "3"), (&texts[3], "4"), (&texts[8], "7")] {
        assert!(text.contains(sink), "{text:?}");
    }
    let config = AttachError::Config(ConfigError::NoticeOnBlockSink(5));
    let source = std::error::Error::source(&config).map(ToString::to_string);
    assert_eq!(source, Some(ConfigError::NoticeOnBlockSink(5).to_string()));
}

#[test]
fn the_defaults_are_a_lines_mode_drop_sink_that_never_blocks() {
    assert_eq!(Overflow::default(), Overflow::Drop);
    assert_eq!(DropUnit::default(), DropUnit::Lines);
    let d = SinkConfig::default();
    assert_eq!(
        (d.overflow, d.drop_unit, d.open, d.drop_notice),
        (Overflow::Drop, DropUnit::Lines, false, false)
    );
    assert_eq!(
        SinkConfig::new(Overflow::Drop, true).drop_unit,
        DropUnit::Lines
    );
    // A stalled sink with the defaults never turns the frontend away.
    let config = Config {
        sinks: vec![SinkConfig {
            open: true,
            ..SinkConfig::default()
        }],
        input: None,
        queue_capacity: 64,
        replay_capacity: 0,
        replay_head_capacity: 0,
        coalesce_ns: 0,
    };
    let mut io = ScriptIo::new(1);
    io.behaviour[0] = Behaviour::Stalled;
    let mut m = new_mux(config, &mut io);
    let data = stream(0, 10_000);
    for chunk in data.chunks(50) {
        assert_eq!(m.write_p(&mut io, chunk), Ok(chunk.len()));
    }
    assert!(m.stats(0).unwrap().dropped > 0);
}
