//! Cross-implementation check (docs/e2ee.md §5): has the JavaScript twin make a fixture file
//! (`node`, run by the test itself) and checks every case through this crate; plus a Rust-only
//! round trip of this crate's own fixture generator.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fixtures;

/// The JS generator, relative to the workspace root.
const JS_GENERATOR: &str = "signaling/web/e2ee/tools/cross-fixtures.mjs";

/// The workspace root, where the JS generator's path starts.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A JS-made fixture file to check: `$E2EE_FIXTURES_DIR/js-made.json` when that is set (a file
/// someone made on purpose), else a fresh one from `node` in a directory of its own (removed on
/// drop). `None` when `node` is not on PATH: the caller skips.
fn js_made_fixture_file() -> Option<JsFixtureFile> {
    if let Some(dir) = std::env::var_os("E2EE_FIXTURES_DIR") {
        return Some(JsFixtureFile {
            path: PathBuf::from(dir).join("js-made.json"),
            made_dir: None,
        });
    }
    if Command::new("node").arg("--version").output().is_err() {
        return None;
    }
    let dir = std::env::temp_dir().join(format!("e2ee-cross-js-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot make the directory {}: {e}", dir.display()));
    let file = JsFixtureFile {
        path: dir.join("js-made.json"),
        made_dir: Some(dir),
    };
    let output = Command::new("node")
        .arg(JS_GENERATOR)
        .arg(&file.path)
        .current_dir(workspace_root())
        .output()
        .expect("node starts (it answered --version)");
    assert!(
        output.status.success(),
        "node {JS_GENERATOR} {} failed ({}):\n{}",
        file.path.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Some(file)
}

/// Where the JS-made fixture file is, and the directory made for it, if the test made one.
struct JsFixtureFile {
    path: PathBuf,
    made_dir: Option<PathBuf>,
}

impl Drop for JsFixtureFile {
    fn drop(&mut self) {
        if let Some(dir) = &self.made_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[test]
fn js_made_fixtures_check_in_rust() {
    let Some(file) = js_made_fixture_file() else {
        eprintln!(
            "SKIPPED js_made_fixtures_check_in_rust: `node` is not on PATH; it needs, from the \
             workspace root: node {JS_GENERATOR} <dir>/js-made.json (or E2EE_FIXTURES_DIR set to \
             a directory holding js-made.json)"
        );
        return;
    };
    let path = &file.path;
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "cannot read the JS-made fixture file {}: {e}\n\
             (E2EE_FIXTURES_DIR, when set, must name a directory holding js-made.json)",
            path.display()
        )
    });
    let fixtures: fixtures::Fixtures = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not a fixture file: {e}", path.display()));
    assert_eq!(
        fixtures.generator,
        "js",
        "{} was not made by the JS side",
        path.display()
    );
    match fixtures::check(&fixtures) {
        Ok(n) => assert!(n > 30, "only {n} cases checked"),
        Err(failures) => panic!(
            "{} JS-made cases fail in Rust:\n{}",
            failures.len(),
            failures.join("\n")
        ),
    }
}

#[test]
fn rust_made_fixtures_round_trip() {
    let made = fixtures::generate(&mut rand::rng());
    let json = serde_json::to_string(&made).unwrap();
    let parsed: fixtures::Fixtures = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed.generator, "rust");
    let n = fixtures::check(&parsed).unwrap_or_else(|f| panic!("{}", f.join("\n")));
    assert!(n > 30, "only {n} cases checked");
}
