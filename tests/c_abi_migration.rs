//! The replay state across a live migration through the C ABI
//! (`cmx_mux_replay_export()`, `cmx_mux_replay_import()`), over real
//! socketpairs: a viewer that connects to the destination is written what
//! one connecting to the source would have been, byte for byte, stamps
//! included, and output goes on from where the source left it.

mod harness;

use std::ptr::{null, null_mut};

use harness::*;

const T0: u64 = 1_796_580_664_783_070_000;

fn cfg() -> Cfg {
    Cfg::new(&[block()]).queue(2048).replay(1500).head(3000)
}

fn viewer(timestamp: bool) -> cmx_sink_config {
    cmx_sink_config {
        open: true,
        timestamp,
        ..sink_defaults()
    }
}

/// A stamped and a plain viewer connect; what each is written of the
/// replay and then of `more`, written at `wall`.
fn viewers(rig: &mut Rig, more: &[u8], wall: u64) -> Vec<Vec<u8>> {
    let v = [viewer(true), viewer(false)].map(|c| rig.attach_new(&c, false).unwrap());
    assert_eq!(
        rig.mux.write_at_wall(more, 0, wall),
        (cmx_result::Ok, more.len())
    );
    rig.drain();
    v.iter().map(|&i| rig.received(i).to_vec()).collect()
}

#[test]
fn a_viewer_connecting_after_the_migration_gets_what_it_would_have_at_the_source() {
    let mut src = Rig::new(&cfg());
    let data = stream(9 * 1000 + 4);
    for (n, chunk) in data.chunks(77).enumerate() {
        let (r, acc) = src.mux.write_at_wall(chunk, 0, T0 + n as u64 * 3_000_017);
        assert_eq!((r, acc), (cmx_result::Ok, chunk.len()));
        src.drain();
    }
    let blob = src.mux.replay_export();

    let mut dst = Rig::new(&cfg());
    assert_eq!(dst.mux.replay_import(&blob), cmx_result::Ok);
    assert_eq!(dst.mux.replay_export(), blob);
    assert_eq!(
        dst.mux.replay_import(&blob),
        cmx_result::ReplayNotFresh,
        "imported twice"
    );
    // The source stopped in the middle of a line: it goes on unstamped.
    let more = b"567\n00000999\n";
    let there = viewers(&mut dst, more, T0 + 999_000_000_000);
    let here = viewers(&mut src, more, T0 + 999_000_000_000);
    assert_bytes_eq("stamped viewer", &there[0], &here[0]);
    assert_bytes_eq("plain viewer", &there[1], &here[1]);
    let out = [data.as_slice(), more].concat();
    let skipped = (data.len() - 3000 - 1500) as u64;
    assert_bytes_eq(
        "plain viewer",
        &there[1],
        &[
            &out[..3000],
            &skip_marker(skipped),
            &out[data.len() - 1500..],
        ]
        .concat(),
    );
    let next = [&stamp_of(T0 + 999_000_000_000), b"00000999\n".as_slice()].concat();
    assert!(there[0].ends_with(&[b"567\n".as_slice(), &next].concat()));
}

#[test]
fn export_sizes_and_import_refusals() {
    let mut src = Rig::new(&cfg());
    src.pump_all(&stream(10_000));
    let blob = src.mux.replay_export();
    let p = src.mux.raw;
    let mut small = vec![0u8; blob.len() - 1];
    let mut needed = 12345usize;
    // SAFETY: live multiplexers, buffers valid for their lengths (whole block).
    unsafe {
        assert_eq!(
            cmx_mux_replay_export(p, small.as_mut_ptr(), small.len(), &mut needed),
            cmx_result::BufferTooSmall
        );
        assert_eq!(needed, 12345, "*needed written on failure");
        assert!(small.iter().all(|&b| b == 0), "the buffer was written");
        assert_eq!(
            cmx_mux_replay_export(p, null_mut(), 5, &mut needed),
            cmx_result::NullParameter
        );
        let mut big = vec![0u8; blob.len() + 10];
        assert_eq!(
            cmx_mux_replay_export(p, big.as_mut_ptr(), big.len(), &mut needed),
            cmx_result::Ok
        );
        assert_eq!((needed, &big[..needed]), (blob.len(), blob.as_slice()));

        let fresh = |cfg: &Cfg| Mux::new(cfg).unwrap();
        let m = fresh(&cfg());
        let import = |to: &Mux, b: &[u8]| cmx_mux_replay_import(to.raw, b.as_ptr(), b.len());
        let mut v2 = blob.clone();
        v2[8] = 2;
        assert_eq!(import(&m, &v2), cmx_result::ReplayBlobVersion);
        assert_eq!(import(&m, &blob[..100]), cmx_result::ReplayBlobMalformed);
        assert_eq!(import(&m, b"CMXRPLY"), cmx_result::ReplayBlobMalformed);
        assert_eq!(
            cmx_mux_replay_import(m.raw, null(), 0),
            cmx_result::ReplayBlobMalformed
        );
        let smaller = fresh(&Cfg::new(&[block()]).queue(2048).replay(1499).head(3000));
        assert_eq!(import(&smaller, &blob), cmx_result::ReplayBlobTooLarge);
        let no_head = fresh(&Cfg::new(&[block()]).queue(2048).replay(1500));
        assert_eq!(import(&no_head, &blob), cmx_result::ReplayBlobTooLarge);
        // What was refused changed nothing.
        assert_eq!(import(&m, &blob), cmx_result::Ok);
        assert_eq!(m.replay_export(), blob);
    }
}
