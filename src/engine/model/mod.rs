//! A checking harness for the engine: a scripted [`Io`](super::Io) and a
//! trivial model that replays operation sequences and asserts the engine's
//! promises after every step. Used by the property test and the fuzz target
//! (crate feature `model`).

pub(crate) mod calendar;
mod checker;
mod render;
mod script;

pub use checker::{Model, Op};
pub use script::{driven, stream, Behaviour, ScriptIo};
