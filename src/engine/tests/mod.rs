//! Engine tests: scripted scenarios and a property test against the model.

mod coalescing;
mod proptest;
mod scenarios;

use crate::engine::{Overflow, SinkConfig};

/// Open sinks with these policies, in order.
fn open_sinks(policies: &[Overflow]) -> Vec<SinkConfig> {
    policies
        .iter()
        .map(|&overflow| SinkConfig {
            overflow,
            open: true,
        })
        .collect()
}

use crate::engine::model::ScriptIo;
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
        let r = self.write(data);
        pump(self, io);
        r
    }

    fn write_at_p(
        &mut self,
        io: &mut ScriptIo,
        data: &[u8],
        now: u64,
    ) -> Result<usize, WouldBlock> {
        let r = self.write_at(data, now);
        pump(self, io);
        r
    }

    fn flush_p(&mut self, io: &mut ScriptIo, now: u64) {
        self.handle_timeout(now);
        pump(self, io);
    }

    fn sink_writable_p(&mut self, io: &mut ScriptIo, sink: usize) -> Result<(), NoSuchSink> {
        let r = self.sink_writable(sink);
        pump(self, io);
        r
    }

    fn sink_event_p(
        &mut self,
        io: &mut ScriptIo,
        sink: usize,
        ev: SinkEvent,
    ) -> Result<(), NoSuchSink> {
        let r = self.sink_event(sink, ev);
        pump(self, io);
        r
    }

    fn input_p(
        &mut self,
        io: &mut ScriptIo,
        sink: usize,
        data: &[u8],
        room: usize,
    ) -> Result<usize, NoSuchSink> {
        let n = self.input(sink, data.len(), room)?;
        io.input.extend_from_slice(&data[..n]);
        pump(self, io);
        Ok(if self.input_source() == Some(sink) {
            n
        } else {
            data.len()
        })
    }
}
