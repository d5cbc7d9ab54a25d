//! The committed C header is exactly what the pinned cbindgen generates.

use std::path::Path;
use std::process::Command;

/// Keep in step with `CBINDGEN_VERSION` in scripts/install-deps.sh.
const CBINDGEN_VERSION: &str = "0.29.4";

#[test]
fn committed_header_matches_cbindgen_output() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let version = Command::new("cbindgen")
        .arg("--version")
        .output()
        .expect("cbindgen not found: run scripts/install-deps.sh");
    let version = String::from_utf8_lossy(&version.stdout);
    assert_eq!(
        version.trim(),
        format!("cbindgen {CBINDGEN_VERSION}"),
        "wrong cbindgen: run scripts/install-deps.sh"
    );
    let script = std::fs::read_to_string(root.join("scripts/install-deps.sh")).unwrap();
    assert!(script.contains(&format!("CBINDGEN_VERSION={CBINDGEN_VERSION}")));

    let fresh = std::env::temp_dir().join(format!("cmx-header-{}.h", std::process::id()));
    // The C enums are plain repr(u32) enums: cbindgen reads the crate as
    // written, with no macro expansion (and no nightly flags).
    let status = Command::new("cbindgen")
        .current_dir(root)
        .args(["--config", "cbindgen.toml", "--quiet", "--output"])
        .arg(&fresh)
        .status()
        .unwrap();
    assert!(status.success());
    let generated = std::fs::read_to_string(&fresh).unwrap();
    std::fs::remove_file(&fresh).ok();
    let committed = std::fs::read_to_string(root.join("include/chardev_multiplex.h")).unwrap();
    assert!(
        generated == committed,
        "include/chardev_multiplex.h is stale: run \
         `cbindgen --config cbindgen.toml --output include/chardev_multiplex.h`"
    );
}

/// Issue 17, item 5: the fd helper's result is an fd the caller owns, so
/// ignoring it leaks: the header makes that a warning, as for every
/// `cmx_result`.
#[test]
fn results_that_must_not_be_ignored_are_must_use_in_c() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = std::fs::read_to_string(root.join("include/chardev_multiplex.h")).unwrap();
    assert!(
        header.contains("CMX_MUST_USE int cmx_fd_dup_flags(int fd, int flags);"),
        "cmx_fd_dup_flags is not CMX_MUST_USE"
    );
    for line in header
        .lines()
        .filter(|l| l.contains(" cmx_mux_") && l.ends_with(");"))
    {
        if line.starts_with("cmx_result ") {
            panic!("a cmx_result that may be ignored: {line}");
        }
    }
}
