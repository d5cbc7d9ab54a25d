//! Engine tests: scripted scenarios and a property test against the model.

mod coalescing;
mod errors;
mod lines;
mod migration;
mod proptest;
mod replay_head;
mod scenarios;
mod stamps;

use crate::engine::{DropUnit, Overflow, SinkConfig};

/// Open sinks with these policies, in order; `Drop` sinks drop bytes.
fn open_sinks(policies: &[Overflow]) -> Vec<SinkConfig> {
    policies
        .iter()
        .map(|&overflow| SinkConfig {
            drop_unit: DropUnit::Bytes,
            ..SinkConfig::new(overflow, true)
        })
        .collect()
}

use crate::engine::model::{driven, ScriptIo};
use crate::engine::{pump, Config, Mux, NoSuchSink, SinkEvent, WouldBlock};

/// A new multiplexer, with its first events delivered to `io`.
fn new_mux(config: Config, io: &mut ScriptIo) -> Mux {
    let mut m = Mux::new(config).unwrap();
    pump(&mut m, io);
    m
}

/// Each engine call followed by [`pump`], so a scenario reads as what the
/// sinks and the frontend see after each step.
trait Pumped {
    fn write_p(&mut self, io: &mut ScriptIo, data: &[u8]) -> Result<usize, WouldBlock>;
    fn write_at_p(&mut self, io: &mut ScriptIo, data: &[u8], now: u64)
        -> Result<usize, WouldBlock>;
    fn write_wall_p(
        &mut self,
        io: &mut ScriptIo,
        data: &[u8],
        wall_ns: u64,
    ) -> Result<usize, WouldBlock>;
    fn flush_p(&mut self, io: &mut ScriptIo, now: u64);
    fn sink_writable_p(&mut self, io: &mut ScriptIo, sink: usize) -> Result<(), NoSuchSink>;
    fn sink_event_p(
        &mut self,
        io: &mut ScriptIo,
        sink: usize,
        ev: SinkEvent,
    ) -> Result<(), NoSuchSink>;
    /// Input `data` from `sink`; what the engine forwards lands in `io.input`.
    /// Returns how much of `data` was used (all of it from a non-input sink).
    fn input_p(
        &mut self,
        io: &mut ScriptIo,
        sink: usize,
        data: &[u8],
        room: usize,
    ) -> Result<usize, NoSuchSink>;
}

impl Pumped for Mux {
    fn write_p(&mut self, io: &mut ScriptIo, data: &[u8]) -> Result<usize, WouldBlock> {
        driven(self, io, |m| m.write(data))
    }

    fn write_at_p(
        &mut self,
        io: &mut ScriptIo,
        data: &[u8],
        now: u64,
    ) -> Result<usize, WouldBlock> {
        driven(self, io, |m| m.write_at(data, now))
    }

    /// [`Mux::write_at_wall`] at monotonic time 0 (no coalescing in these tests).
    fn write_wall_p(
        &mut self,
        io: &mut ScriptIo,
        data: &[u8],
        wall_ns: u64,
    ) -> Result<usize, WouldBlock> {
        driven(self, io, |m| m.write_at_wall(data, 0, wall_ns))
    }

    fn flush_p(&mut self, io: &mut ScriptIo, now: u64) {
        driven(self, io, |m| m.handle_timeout(now))
    }

    fn sink_writable_p(&mut self, io: &mut ScriptIo, sink: usize) -> Result<(), NoSuchSink> {
        driven(self, io, |m| m.sink_writable(sink))
    }

    fn sink_event_p(
        &mut self,
        io: &mut ScriptIo,
        sink: usize,
        ev: SinkEvent,
    ) -> Result<(), NoSuchSink> {
        driven(self, io, |m| m.sink_event(sink, ev))
    }

    fn input_p(
        &mut self,
        io: &mut ScriptIo,
        sink: usize,
        data: &[u8],
        room: usize,
    ) -> Result<usize, NoSuchSink> {
        let n = driven(self, io, |m| m.input(sink, data.len(), room))?;
        io.input.extend_from_slice(&data[..n]);
        Ok(if self.input_source() == Some(sink) {
            n
        } else {
            data.len()
        })
    }
}
