//! `loadtest`: simulated callers and viewers against the SFU and signaling service, and the
//! parts they are made of.
//!
//! The binary (`loadtest meeting|broadcast|baseline`) is a thin CLI over this library. Other
//! crates use the library too: the SFU's integration tests put an [`impairment::ImpairmentRelay`]
//! between a client and the SFU to test behaviour under loss, delay, jitter, reordering and a
//! bandwidth cap.
//!
//! | module | holds |
//! |---|---|
//! | [`media`] | Opus test tone (real libopus), VP8-shaped simulcast frames (generators; RTP and VP8 reassembly are `call_client::media`'s) |
//! | [`probe`] | the send-time/sequence trailer carried inside each encrypted frame |
//! | [`secure_media`] | probe + SFrame seal on send, open + measure on receive (`call_client::media`) |
//! | [`receiver_stats`] | latency, loss, reordering, RFC 3550 jitter per received stream |
//! | [`outage`] | media that stopped: outages and the loss after the last frame, per stream |
//! | [`histogram`] | HDR-histogram percentiles of durations |
//! | [`progress`] | the joining/running progress bar |
//! | [`report`] | the JSON report and the summary table |
//! | [`report_merge`] | `loadtest merge`: several generators' reports added up into one |
//! | [`process_usage`] | CPU seconds and peak RSS of a process from `/proc`; thread CPU time |
//! | [`http_client`] | the one HTTP client (reqwest, blocking): no proxy, no redirects, deadlines |
//! | [`metrics_scrape`] | Prometheus text-format scraper |
//! | [`service_process`] | start a service, wait for health, stop it with SIGTERM |
//! | [`services`] | start `sfu` + `signaling serve` (or use `--url`), create the room |
//! | [`sfu_cost`] | the SFU's CPU, peak memory and forwarded packets over a run |
//! | [`impairment`] | the impairing UDP relay and its `--impair` syntax |
//! | [`baseline`] | the plain UDP relay baseline |
//! | [`participant`] | one simulated caller, presenter or viewer (`async` engine: a `webrtc` session each) |
//! | [`viewer_engine`] | the sans-IO viewer engine: many viewers per event loop on the `rtc` core |
//! | [`scenario`] | `meeting` and `broadcast`: services, room, participants, report |

pub mod baseline;
pub mod histogram;
pub mod http_client;
pub mod impairment;
pub mod media;
pub mod metrics_scrape;
pub mod outage;
pub mod participant;
pub mod probe;
pub mod process_usage;
pub mod progress;
pub mod receiver_stats;
pub mod recorder_cost;
pub mod renegotiation;
pub mod report;
pub mod report_merge;
pub mod scenario;
pub mod secure_media;
pub mod service_process;
pub mod services;
pub mod sfu_cost;
pub mod viewer_engine;
