//! Engine tests: scripted scenarios and a property test against the model.

mod coalescing;
mod proptest;
mod scenarios;
