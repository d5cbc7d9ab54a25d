//! The replay state: the head's reset, and export and import for live
//! migration.

use super::boundary::{
    ffi_panic_boundary, try_mut_from_ptr, try_ref_from_ptr, try_slice, try_slice_mut,
};
use super::mux::{cmx_mux, with_mux, with_mux_ref};
use super::result::cmx_result;
use crate::engine::ImportError;

/// The head of the output (`replay_head_capacity`) starts again with the
/// next byte written: call it when the guest resets, so that a sink that
/// opens later is replayed the new boot's first output. The tail is not
/// changed. A sink still being written the old head loses the rest of it
/// (counted in `dropped`); what follows is then written as a new fragment
/// (a `timestamp` sink stamps it again).
///
/// # Safety
/// `mux` is NULL or live.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_reset_head(mux: *mut cmx_mux) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: NULL or live, used by no one else during the call, per
        // this function's contract.
        let m = unsafe { try_mut_from_ptr!(mux) };
        with_mux(m, |e| {
            e.reset_head();
            cmx_result::Ok
        })
    }
}

/// Writes the replay state as a self-describing, versioned blob (version
/// `CMX_REPLAY_BLOB_VERSION`): the head and the tail of the output kept
/// for replay, how many bytes between them were kept in neither, the start
/// times of their lines, how many bytes of output were written so far and
/// where the output stands in its line. It is for
/// `cmx_mux_replay_import()` on the destination of a live migration.
///
/// Two calls: with `buf` NULL and `len` 0, `*needed` receives the blob's
/// length; then with a buffer of at least that length, the blob is written
/// to `buf` and `*needed` receives its length again. A buffer that is too
/// short (`len` > 0) gives `CMX_RESULT_BUFFER_TOO_SMALL` and nothing is
/// written. The length changes only when output is written or the head is
/// reset.
///
/// # Safety
/// `mux` is NULL or live; `buf` is NULL or valid for writing `len` bytes
/// (`buf` NULL with `len` > 0 is `CMX_RESULT_NULL_PARAMETER`); `needed` is
/// NULL or writable.
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_replay_export(
    mux: *const cmx_mux,
    buf: *mut u8,
    len: usize,
    needed: *mut usize,
) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: `mux` NULL or live, `buf` NULL or valid for `len` bytes of
        // writes, `needed` NULL or writable, per this function's contract;
        // none is used by anyone else during the call.
        let (m, out, needed) = unsafe {
            (
                try_ref_from_ptr!(mux),
                try_slice_mut!(buf, len),
                try_mut_from_ptr!(needed),
            )
        };
        with_mux_ref(m, |e| {
            let n = e.replay_export_len();
            if out.is_empty() {
                *needed = n;
                return cmx_result::Ok;
            }
            match e.replay_export(out) {
                Some(written) => {
                    *needed = written;
                    cmx_result::Ok
                }
                None => cmx_result::BufferTooSmall,
            }
        })
    }
}

/// Takes over the replay state in `blob` (`len` bytes from
/// `cmx_mux_replay_export()` of another multiplexer, the source of a live
/// migration; copied, borrowed for the call only). A sink that opens
/// afterwards is replayed exactly what a sink that opened on the source
/// would have been, and output continues the source's line (a
/// `timestamp` sink does not stamp the rest of a line the source started).
/// Sinks open already are not replayed anything.
///
/// Only a multiplexer that has written no output takes it
/// (`CMX_RESULT_REPLAY_NOT_FRESH`); its `replay_capacity` and
/// `replay_head_capacity` must hold the blob's tail and head
/// (`CMX_RESULT_REPLAY_BLOB_TOO_LARGE`; the same configuration as the
/// source's always does). A blob of another version is
/// `CMX_RESULT_REPLAY_BLOB_VERSION`; anything else that is not a blob this
/// library wrote is `CMX_RESULT_REPLAY_BLOB_MALFORMED`. Nothing changes
/// unless it returns `CMX_RESULT_OK`.
///
/// # Safety
/// `mux` is NULL or live; `blob` is valid for `len` bytes (or NULL with
/// `len` 0).
#[must_use]
#[no_mangle]
pub unsafe extern "C" fn cmx_mux_replay_import(
    mux: *mut cmx_mux,
    blob: *const u8,
    len: usize,
) -> cmx_result {
    ffi_panic_boundary! {
        // SAFETY: `mux` NULL or live, `blob` valid for `len` bytes (or NULL
        // with `len` 0), per this function's contract.
        let (m, blob) = unsafe { (try_mut_from_ptr!(mux), try_slice!(blob, len)) };
        with_mux(m, |e| match e.replay_import(blob) {
            Ok(()) => cmx_result::Ok,
            Err(ImportError::Malformed) => cmx_result::ReplayBlobMalformed,
            Err(ImportError::Version(_)) => cmx_result::ReplayBlobVersion,
            Err(ImportError::TooLarge) => cmx_result::ReplayBlobTooLarge,
            Err(ImportError::NotFresh) => cmx_result::ReplayNotFresh,
        })
    }
}
