//! chardev-multiplex: one serial console, logged and interactive at once.
//!
//! - [`engine`]: the sans-IO multiplexer state machine (safe Rust, no syscalls).
//! - [`fdset`]: the fd re-open helper behind QEMU's `/dev/fdset/N` paths.
//! - [`ffi`]: the C ABI (`cmx_*`), the only place raw pointers are handled.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod engine;
pub mod fdset;
pub mod ffi;
