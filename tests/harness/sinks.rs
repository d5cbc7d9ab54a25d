//! Sink configurations and the stats invariant.

use super::*;

/// `offered == delivered + queued + dropped`, as documented.
#[track_caller]
pub fn assert_balanced(what: &str, st: &cmx_sink_stats) {
    assert_eq!(
        st.offered,
        st.delivered + st.queued + st.dropped,
        "{what}: offered != delivered + queued + dropped in {st:?}"
    );
}

pub const OPEN: u32 = cmx_sink_state::Open as u32;
pub const CLOSED: u32 = cmx_sink_state::Closed as u32;
pub const FAILED: u32 = cmx_sink_state::Failed as u32;
pub const DETACHING: u32 = cmx_sink_state::Detaching as u32;
pub const DETACHED: u32 = cmx_sink_state::Detached as u32;

/// A sink configuration with every field 0 but `size`: what a C caller
/// gets with `{ .size = sizeof(cmx_sink_config) }` (a `drop` sink in
/// `lines` mode, closed).
pub fn sink_defaults() -> cmx_sink_config {
    cmx_sink_config {
        size: std::mem::size_of::<cmx_sink_config>(),
        overflow: 0,
        drop_unit: 0,
        open: false,
        input: false,
        drop_notice: false,
        timestamp: false,
    }
}

/// A sink with this policy, dropping bytes (not lines) if it drops.
pub fn sink(overflow: cmx_overflow, open: bool, input: bool) -> cmx_sink_config {
    cmx_sink_config {
        overflow: overflow as u32,
        open,
        input,
        drop_unit: cmx_drop_unit::Bytes as u32,
        ..sink_defaults()
    }
}

pub fn block() -> cmx_sink_config {
    sink(cmx_overflow::Block, true, false)
}

pub fn drop_sink() -> cmx_sink_config {
    sink(cmx_overflow::Drop, true, false)
}
