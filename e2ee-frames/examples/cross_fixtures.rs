//! Writes a cross-implementation fixture file (docs/e2ee.md §5) made with fresh random keys:
//!
//! ```text
//! cargo run -p e2ee-frames --example cross_fixtures -- OUT.json
//! ```
//!
//! The file is checked with this crate before it is written, so a broken file is never handed
//! to the JavaScript side.

#[path = "../tests/it/fixtures.rs"]
mod fixtures;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: cross_fixtures OUT.json");
        return ExitCode::from(2);
    };
    let fixtures = fixtures::generate(&mut rand::rng());
    if let Err(failures) = fixtures::check(&fixtures) {
        eprintln!("generated fixtures do not check:\n{}", failures.join("\n"));
        return ExitCode::FAILURE;
    }
    // Serializing strings and numbers cannot fail.
    let json = serde_json::to_string_pretty(&fixtures).expect("fixtures serialize");
    let path = std::path::Path::new(&out);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    if let Err(e) = std::fs::write(path, json + "\n") {
        eprintln!("cannot write {out}: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
