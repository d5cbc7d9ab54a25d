//! The C enums: plain `#[repr(u32)]` enums, so that cbindgen reads them as
//! written, each followed by one [`c_enum!`] line that lists its variants
//! and derives the conversions from that list. The list is checked against
//! the enum by an exhaustive `match`, so a variant cannot be left out.

/// `c_enum!(name { A, B, ... })` for a `#[repr(u32)]` enum `name` whose
/// variants are exactly `A, B, ...` (in declaration order): `name::ALL`,
/// `From<name> for u32` and `TryFrom<u32>` (the unknown value as the error).
/// Modelled on rustls-ffi's `enum_builder!` derive.
macro_rules! c_enum {
    ($name:ident { $($variant:ident),+ $(,)? }) => {
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
        }

        impl From<$name> for u32 {
            fn from(v: $name) -> u32 {
                // The list above names every variant: this match is exhaustive.
                match v {
                    $($name::$variant => $name::$variant as u32,)+
                }
            }
        }

        impl TryFrom<u32> for $name {
            type Error = u32;
            fn try_from(x: u32) -> Result<Self, u32> {
                $(if x == $name::$variant as u32 {
                    return Ok($name::$variant);
                })+
                Err(x)
            }
        }
    };
}
pub(crate) use c_enum;

/// What a sink does when its queue is full. The zero value, `DROP`, is the
/// one that can never hold the guest back: a configuration that leaves the
/// policy out gets it.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cmx_overflow {
    /// Never slows the frontend: the oldest queued bytes (or lines) are
    /// discarded and counted (0, the default).
    Drop = 0,
    /// Lossless: the frontend is told "would block" until the sink drains.
    /// A stalled `block` sink stops the guest's output: use it only where
    /// the user asked for it.
    Block = 1,
}
c_enum!(cmx_overflow { Drop, Block });

/// What a `drop` sink discards when its queue is full.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cmx_drop_unit {
    /// The oldest whole lines: a viewer never sees the end of one line
    /// spliced onto the start of another. A line longer than the queue
    /// falls back to bytes (0, the default).
    Lines = 0,
    /// The oldest bytes, wherever they fall.
    Bytes = 1,
}
c_enum!(cmx_drop_unit { Lines, Bytes });

/// An event a sink reports with `cmx_mux_sink_event()`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cmx_sink_event {
    /// The sink connected (a viewer connected, a file was opened); a failed
    /// sink that opens again is open, and its queue is written again.
    Opened = 0,
    /// The sink disconnected; its queue is discarded (counted as dropped).
    Closed = 1,
    /// The sink sent a break; forwarded only from the input source.
    Break = 2,
}
c_enum!(cmx_sink_event {
    Opened,
    Closed,
    Break
});

/// An event for the frontend, pulled with `cmx_mux_poll_event()`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cmx_frontend_event {
    /// No event is pending.
    None = 0,
    /// The first sink opened (or sinks were open when the mux was created).
    Opened = 1,
    /// The last open sink closed.
    Closed = 2,
    /// The input source sent a break.
    Break = 3,
    /// The frontend, which got `CMX_RESULT_WOULD_BLOCK`, may write again.
    Writable = 4,
}
c_enum!(cmx_frontend_event {
    None,
    Opened,
    Closed,
    Break,
    Writable
});

/// A sink's state, as reported in `cmx_sink_stats`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cmx_sink_state {
    /// Connected and receiving output.
    Open = 0,
    /// Not connected: receives nothing, never blocks.
    Closed = 1,
    /// A write failed with a hard error: its queue was discarded (counted
    /// as dropped); it receives nothing and never blocks until it opens
    /// again (`CMX_SINK_EVENT_OPENED`).
    Failed = 2,
    /// Being detached (`cmx_mux_detach()`) while connected: gets no new
    /// output; its queue is still written out.
    Detaching = 3,
    /// Detached: its queue was written out (or discarded: a `drop` sink's,
    /// or one that closed or failed meanwhile); waits for
    /// `cmx_mux_release()`. `CMX_SINK_REPORT_KIND_DETACHED` said so.
    Detached = 4,
}
c_enum!(cmx_sink_state {
    Open,
    Closed,
    Failed,
    Detaching,
    Detached
});

/// What a `cmx_sink_report` reports.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cmx_sink_report_kind {
    /// No report is pending.
    None = 0,
    /// A `drop` sink started dropping (a drop episode began): `drop_unit`
    /// is its unit, `dropped` every byte it has dropped so far.
    DropStarted = 1,
    /// A drop episode ended: the sink caught up (its queue emptied), or it
    /// closed, failed, was detached or released. `episode`: bytes dropped in
    /// the episode; `dropped`: every byte it has dropped so far. Every
    /// `DROP_STARTED` is followed by one `DROP_STOPPED`.
    DropStopped = 2,
    /// A write to the sink failed with a hard error, `errnum`; reported once
    /// per failure. The sink stays failed (`CMX_SINK_STATE_FAILED`: its
    /// queue discarded and counted, it receives nothing and never blocks)
    /// until it opens again (`CMX_SINK_EVENT_OPENED`).
    Failed = 3,
    /// Detaching finished (`cmx_mux_detach()`): the sink wrote out its
    /// queue, or had nothing to write, or closed or failed meanwhile. Call
    /// `cmx_mux_release()`, which returns its final counters.
    Detached = 4,
}
c_enum!(cmx_sink_report_kind {
    None,
    DropStarted,
    DropStopped,
    Failed,
    Detached
});
