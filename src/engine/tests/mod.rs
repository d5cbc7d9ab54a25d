//! Engine tests: scripted scenarios and a property test against a model.

mod model;
mod scenarios;
mod script;
