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
