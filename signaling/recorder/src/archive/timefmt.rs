//! The archive's timestamps: RFC 3339 in UTC with milliseconds (`2026-12-06T21:40:00.123Z`).

use std::time::SystemTime;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Formats `at` as RFC 3339 UTC, to the millisecond.
pub fn format(at: SystemTime) -> String {
    let at = OffsetDateTime::from(at);
    let at = at
        .replace_nanosecond(at.millisecond() as u32 * 1_000_000)
        .expect("a whole number of milliseconds is a valid nanosecond");
    at.format(&Rfc3339).expect("a UTC time formats as RFC 3339")
}

/// Parses an RFC 3339 timestamp.
pub fn parse(text: &str) -> Result<SystemTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(SystemTime::from)
        .map_err(|e| format!("bad timestamp {text:?}: {e}"))
}

/// A session id: its start time (sortable) and 8 random hex digits, e.g.
/// `20261206T214000Z-1a2b3c4d`.
pub fn session_id(started_at: SystemTime) -> String {
    let at = OffsetDateTime::from(started_at);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{:08x}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        rand::random::<u32>()
    )
}
