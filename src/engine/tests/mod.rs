//! Engine tests: scripted scenarios and a property test against the model.

mod proptest;
mod scenarios;
