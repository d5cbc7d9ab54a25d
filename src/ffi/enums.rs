//! The C enums, each defined once by [`u32_enum!`] with its conversions.

/// Defines a `#[repr(u32)]` C enum with `ALL` (every value, in order),
/// `From<T> for u32` and `TryFrom<u32>` (the unknown value as the error).
/// Variants may carry a message (`Name = 7 => c"text"`); an enum whose
/// variants all do gets `message()`. Modelled on rustls-ffi's
/// `u32_enum_builder!`: one list, so the values, the list and the messages
/// cannot drift apart.
macro_rules! u32_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal $(=> $msg:literal)? , )*
        }
    ) => {
        $(#[$meta])*
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$vmeta])* $variant = $value, )*
        }

        impl $name {
            /// Every value, in declaration order.
            /// cbindgen:ignore
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            $crate::ffi::enums::u32_enum!(@message $name $( $variant $(=> $msg)? ; )*);
        }

        impl From<$name> for u32 {
            fn from(v: $name) -> u32 {
                v as u32
            }
        }

        impl TryFrom<u32> for $name {
            type Error = u32;
            fn try_from(x: u32) -> Result<Self, u32> {
                $( if x == $value { return Ok($name::$variant); } )*
                Err(x)
            }
        }
    };
    (@message $name:ident $( $variant:ident => $msg:literal ; )+) => {
        /// A one-line English description, NUL-terminated and static.
        pub fn message(self) -> &'static core::ffi::CStr {
            match self {
                $( $name::$variant => $msg, )*
            }
        }
    };
    (@message $name:ident $( $variant:ident ; )*) => {};
}
pub(crate) use u32_enum;

u32_enum! {
    /// What a sink does when its queue is full.
    pub enum cmx_overflow {
        /// Lossless: the frontend is told "would block" until the sink drains.
        Block = 0,
        /// Never slows the frontend: the oldest queued bytes are discarded, counted.
        Drop = 1,
    }
}

u32_enum! {
    /// What a `drop` sink discards when its queue is full.
    pub enum cmx_drop_unit {
        /// The oldest bytes, wherever they fall (0, so a zeroed config gets it).
        Bytes = 0,
        /// The oldest whole lines: a viewer never sees the end of one line
        /// spliced onto the start of another. A line longer than the queue
        /// falls back to bytes.
        Lines = 1,
    }
}

u32_enum! {
    /// An event a sink reports with `cmx_mux_sink_event()`.
    pub enum cmx_sink_event {
        /// The sink connected (a viewer connected, a file was opened).
        Opened = 0,
        /// The sink disconnected; its queue is discarded (counted as dropped).
        Closed = 1,
        /// The sink sent a break; forwarded only from the input source.
        Break = 2,
    }
}

u32_enum! {
    /// An event for the frontend, pulled with `cmx_mux_poll_event()`.
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
}

u32_enum! {
    /// A sink's state, as reported in `cmx_sink_stats`.
    pub enum cmx_sink_state {
        /// Connected and receiving output.
        Open = 0,
        /// Not connected: receives nothing, never blocks.
        Closed = 1,
        /// A write failed with a hard error: receives nothing until it reopens.
        Failed = 2,
        /// Being detached (`cmx_mux_detach()`) while connected: gets no new
        /// output; its queue is still written out.
        Detaching = 3,
        /// Detached: its queue was written out (or discarded: a `drop`
        /// sink's, or one that closed or failed meanwhile); waits for
        /// `cmx_mux_release()`.
        Detached = 4,
    }
}
