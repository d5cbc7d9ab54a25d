//! The C boundary's rules, checked on the source of `src/ffi/` (issue 17,
//! item 2): every exported function runs its whole body inside
//! `ffi_panic_boundary!`, so that no panic reaches C, and raw pointers are
//! dereferenced in one place only, `src/ffi/boundary.rs`, through checked
//! conversions (no function elsewhere writes through a raw pointer, as the
//! old `put()` did). `clippy::undocumented_unsafe_blocks` (Cargo.toml
//! `[lints]`) sees to a `// SAFETY:` comment on every `unsafe` block.

use std::path::{Path, PathBuf};

fn ffi_sources() -> Vec<(PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect();
    out.sort();
    assert!(out.len() >= 8, "src/ffi has {} files", out.len());
    out
}

/// The text with `//` comments removed (doc comments included).
fn code_only(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_exported_function_is_inside_the_panic_boundary() {
    let mut exported = 0;
    for (path, text) in ffi_sources() {
        let code = code_only(&text);
        let mut rest = code.as_str();
        while let Some(at) = rest.find("extern \"C\" fn ") {
            let after = &rest[at..];
            let name: String = after["extern \"C\" fn ".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let body = after.find('{').expect("a function body");
            let first = after[body + 1..].trim_start();
            assert!(
                first.starts_with("ffi_panic_boundary!")
                    || first.starts_with("boundary::ffi_panic_boundary!"),
                "{}: {name} does not start with ffi_panic_boundary!: {:?}",
                path.display(),
                &first[..first.len().min(60)]
            );
            exported += 1;
            rest = &after[body..];
        }
    }
    assert!(exported >= 28, "only {exported} exported functions found");
}

/// The contents of every `unsafe { ... }` block in `code`.
fn unsafe_blocks(code: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("unsafe {") {
        let open = at + "unsafe ".len();
        let mut depth = 0;
        let mut end = open;
        for (k, c) in rest[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + k;
                        break;
                    }
                }
                _ => {}
            }
        }
        out.push(&rest[open + 1..end]);
        rest = &rest[end..];
    }
    out
}

#[test]
fn raw_pointers_are_dereferenced_only_in_the_boundary_module() {
    // What turns a raw pointer into a reference, a slice, a Box or a value.
    let forbidden = [
        ".as_mut()",
        ".as_ref()",
        "from_raw_parts",
        "Box::from_raw",
        "read_unaligned",
        "write_unaligned",
        "ptr::write",
        "ptr::read",
        ".offset(",
        ".add(",
        "copy_nonoverlapping",
        "fn put",
    ];
    // The boundary's checked conversions, and the functions that hand on
    // their contract to them.
    let conversions = [
        "try_ref_from_ptr!",
        "try_mut_from_ptr!",
        "try_opt_mut_from_ptr!",
        "try_slice!",
        "try_slice_mut!",
        "try_config_from_ptr!",
        "config_from_ptr(",
        "slice_from_ptr(",
        "slice_mut_from_ptr(",
        "free_box(",
        "config_from_c(",
        "write_with(",
    ];
    let mut blocks = 0;
    for (path, text) in ffi_sources() {
        if path.ends_with("boundary.rs") {
            continue;
        }
        let code = code_only(&text);
        for f in forbidden {
            assert!(
                !code.contains(f),
                "{}: `{f}` outside src/ffi/boundary.rs",
                path.display()
            );
        }
        for block in unsafe_blocks(&code) {
            blocks += 1;
            assert!(
                conversions.iter().any(|c| block.contains(c)),
                "{}: an unsafe block that is not a checked conversion: {block:?}",
                path.display()
            );
        }
    }
    assert!(blocks >= 28, "only {blocks} unsafe blocks found");
}
