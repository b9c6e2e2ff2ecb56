//! Cross-implementation check (docs/e2ee.md §5): opens the fixture file made by the JavaScript
//! twin and checks every case through this crate; plus a Rust-only round trip of this crate's
//! own fixture generator.

#[path = "support/fixtures.rs"]
mod fixtures;

use std::path::PathBuf;

const JS_COMMAND: &str =
    "node signaling/web/e2ee/tools/cross-fixtures.mjs target/e2ee-fixtures/js-made.json";

fn js_fixture_path() -> PathBuf {
    match std::env::var_os("E2EE_FIXTURES_DIR") {
        Some(dir) => PathBuf::from(dir).join("js-made.json"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target/e2ee-fixtures/js-made.json"),
    }
}

#[test]
fn js_made_fixtures_check_in_rust() {
    let path = js_fixture_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the JS-made fixture file {}: {e}\n\
             make it first, from the workspace root: {JS_COMMAND}\n\
             (or set E2EE_FIXTURES_DIR to the directory holding js-made.json)",
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
