//! The Rust versions Cargo.toml states are true (issue 17, item 7): the
//! library and everything it depends on build with QEMU 10.2's minimum,
//! Rust 1.83 (`rust-version`), and the comment above it names the newest
//! `rust-version` among the dev-dependencies in Cargo.lock, which `cargo
//! test` and `cargo bench` need. Reads the manifests of the locked packages
//! from cargo's registry cache (they are there once the tests are built).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// QEMU 10.2's minimum Rust (`rust-version` in its rust/Cargo.toml).
const QEMU_MSRV: &str = "1.83";

type Version = (u32, u32, u32);

fn version(text: &str) -> Version {
    let mut parts = text.trim().split('.').map(|p| p.parse::<u32>().unwrap());
    (
        parts.next().unwrap(),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

/// The value of `key = "..."` on a line of its own in `text`, if any.
fn string_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let rest = l.trim().strip_prefix(key)?.trim_start().strip_prefix('=')?;
        Some(rest.trim().trim_matches('"').to_owned())
    })
}

/// One `[[package]]` of Cargo.lock: name, version, names it depends on.
struct Locked {
    name: String,
    version: String,
    deps: Vec<String>,
}

fn lockfile(root: &Path) -> Vec<Locked> {
    let text = std::fs::read_to_string(root.join("Cargo.lock")).unwrap();
    text.split("[[package]]")
        .skip(1)
        .map(|block| {
            let deps = block
                .split_once("dependencies = [")
                .map(|(_, rest)| {
                    rest.split(']')
                        .next()
                        .unwrap()
                        .split(',')
                        .map(|d| d.trim().trim_matches('"'))
                        .filter(|d| !d.is_empty())
                        // "name" or "name version" when two versions are locked
                        .map(|d| d.split(' ').next().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            Locked {
                name: string_value(block, "name").unwrap(),
                version: string_value(block, "version").unwrap(),
                deps,
            }
        })
        .collect()
}

/// `rust-version` of a locked package, from its manifest in the registry cache.
fn rust_version_of(name: &str, locked_version: &str) -> Option<Version> {
    let home = std::env::var_os("CARGO_HOME").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"),
        PathBuf::from,
    );
    let src = home.join("registry/src");
    let manifest = std::fs::read_dir(&src)
        .unwrap_or_else(|e| panic!("{}: {e}", src.display()))
        .map(|e| {
            e.unwrap()
                .path()
                .join(format!("{name}-{locked_version}/Cargo.toml"))
        })
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{name} {locked_version} is not in {}", src.display()));
    let text = std::fs::read_to_string(manifest).unwrap();
    let package = text.split("\n[").find(|s| s.starts_with("package]"))?;
    string_value(package, "rust-version").map(|v| version(&v))
}

#[test]
fn stated_rust_versions_match_the_lockfile() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let stated = string_value(&manifest, "rust-version").expect("rust-version");
    assert_eq!(stated, QEMU_MSRV, "rust-version is not QEMU 10.2's minimum");
    assert_eq!(env!("CARGO_PKG_RUST_VERSION"), QEMU_MSRV);

    // The library's dependencies ([dependencies]) and theirs.
    let normal: Vec<String> = manifest
        .split("\n[dependencies]\n")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_owned()))
        .filter(|k| !k.is_empty() && !k.starts_with('#'))
        .collect();
    assert!(normal.contains(&"libc".to_owned()), "{normal:?}");
    let locked = lockfile(root);
    let by_name: BTreeMap<&str, &Locked> = locked.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut closure = BTreeSet::new();
    let mut todo = normal;
    while let Some(n) = todo.pop() {
        if closure.insert(n.clone()) {
            todo.extend(by_name[n.as_str()].deps.iter().cloned());
        }
    }
    let msrv = version(QEMU_MSRV);
    for name in &closure {
        let p = by_name[name.as_str()];
        if let Some(v) = rust_version_of(&p.name, &p.version) {
            assert!(
                v <= msrv,
                "{} {} needs Rust {v:?}, newer than {QEMU_MSRV}",
                p.name,
                p.version
            );
        }
    }

    // Everything else in the lockfile is there for the tests and benches.
    let (newest, by) = locked
        .iter()
        .filter(|p| !closure.contains(&p.name) && p.name != env!("CARGO_PKG_NAME"))
        .filter_map(|p| rust_version_of(&p.name, &p.version).map(|v| (v, p)))
        .max_by_key(|(v, _)| *v)
        .expect("dev-dependencies with a rust-version");
    let newest = format!("{}.{}", newest.0, newest.1);
    let comment: String = manifest
        .split("\nrust-version")
        .next()
        .unwrap()
        .lines()
        .rev()
        .take_while(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        comment.contains(&format!("Rust {newest} ({} {}", by.name, by.version)),
        "the comment above rust-version should say the dev-dependencies need \
         Rust {newest} ({} {}): {comment:?}",
        by.name,
        by.version
    );
}
