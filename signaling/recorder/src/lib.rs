//! The compliance recorder (issue: compliance recorder; docs/architecture.md).
//!
//! A key recipient named in an admin-signed recording policy: it learns from signaling when a
//! recorded room becomes active, joins it as `recorder` (in the roster and the call security code
//! like everyone), receives the key envelopes every sender wraps to it, decrypts every frame and
//! hands them to the archive, which keeps per-track WebM files and a signed, chained manifest,
//! all encrypted to the organization's archive key, under the policy's retention period.
//!
//! | module | what it holds |
//! |---|---|
//! | `identity` | the recorder's device keys in its state directory (0600) |
//! | `sink` | the contract between the live side and the archive |
//! | `archive` | the encrypted, signed, chained session archive and its retention |
//! | `archive_cli` | enrolment and the archive commands (`enroll`, `list`, `hold`, `release`, `verify`, `export`, `sweep`) |
//! | `live` | the live side: joins recorded rooms, decrypts every frame, feeds the archive |
//! | `live_cli` | the live commands (`serve`, `record`) |

pub mod archive;
pub mod archive_cli;
pub mod identity;
pub mod live;
pub mod live_cli;
pub mod sink;
