//! `loadtest`: meeting and broadcast scenarios against a real SFU and signaling service, and a
//! plain-relay baseline, and `merge` of several generators' reports. See `loadtest/README.md`
//! for the commands and the report fields.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use loadtest::baseline::{BaselineConfig, BaselineProgress, run_baseline};
use loadtest::impairment::Impairment;
use loadtest::progress::RunProgress;
use loadtest::report::{Report, Scenario};
use loadtest::report_merge::{merge_reports, read_report};
use loadtest::scenario::{
    BroadcastConfig, CommonConfig, MeetingConfig, Target, run_broadcast, run_meeting,
};
use loadtest::viewer_engine::ViewerEngineKind;

/// Exit status of a run that completed but in which media stopped for some receiver (status 1
/// is a run that could not be carried out).
const MEDIA_STOPPED_EXIT: u8 = 2;

/// Load tests for the E2EE SFU. Every run is bounded by --duration and stops by itself; all
/// traffic stays on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "loadtest", version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct CommonArgs {
    /// Seconds the measured phase lasts (1-3600).
    #[arg(long, global = true, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    duration: u64,
    /// Signaling base URL of services already running (e.g. http://127.0.0.1:8080); without
    /// it, `signaling` and `sfu` are started from loadtest's own directory and stopped after.
    #[arg(long, global = true)]
    url: Option<String>,
    /// With --url: pid of the SFU on this machine, to read its CPU time and peak memory.
    #[arg(long, global = true, requires = "url")]
    sfu_pid: Option<u32>,
    /// With --url: the SFU's /metrics URL, to read the packets it forwarded.
    #[arg(long, global = true, requires = "url")]
    sfu_metrics: Option<String>,
    /// The API key the participants' tokens are signed with, as KEY:SECRET (the token's issuer
    /// and HS256 secret). Started services accept exactly this key (default: a fresh random
    /// one); with --url the default is the `signaling dev` key.
    #[arg(long, global = true, env = "LOADTEST_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// The admin token: with --url, to create the room (without it the room must exist or be
    /// auto-created by the service); started services accept exactly this token (default: a
    /// fresh random one).
    #[arg(
        long,
        global = true,
        env = "LOADTEST_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// The room to create or join (1-64 of A-Z a-z 0-9 _ -); default: a fresh one named after
    /// the run. Another generator joins it with --url, --room and --viewers-only/--callers-only.
    #[arg(long, global = true)]
    room: Option<String>,
    /// Number of this run's first participant (identity, device id, probe sender id); default
    /// 0, or a random multiple of 1000 with --viewers-only/--callers-only. Generators driving
    /// one room need ranges that do not overlap.
    #[arg(long, global = true)]
    first_index: Option<u16>,
    /// Write the JSON report to this file.
    #[arg(long, global = true)]
    report: Option<PathBuf>,
    /// Impair the link between clients and the server: loss=2%,delay=40ms,jitter=10ms,
    /// reorder=1%,rate=2mbit (any subset).
    #[arg(long, global = true)]
    impair: Option<Impairment>,
    /// Seed of every random choice (frame sizes, impairment).
    #[arg(long, global = true, default_value_t = 1)]
    seed: u64,
    /// What runs broadcast viewers: `sansio` (many per event loop on the `rtc` core) or
    /// `async` (each a full `webrtc` session).
    #[arg(long, global = true, default_value = "sansio", value_parser = parse_engine)]
    viewer_engine: ViewerEngineKind,
    /// Event loops (threads) of the sansio viewer engine (default: the number of cores).
    #[arg(long, global = true, value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: Option<u16>,
}

fn parse_engine(s: &str) -> Result<ViewerEngineKind, String> {
    s.parse()
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Callers that all publish (Opus + 3-layer VP8 simulcast) and subscribe to each other.
    Meeting {
        /// Number of callers (2-100; 1-100 with --callers-only).
        #[arg(long)]
        callers: usize,
        /// Join a meeting another generator hosts (needs --url and --room).
        #[arg(long)]
        callers_only: bool,
        /// Create the room with receive slots: each caller offers its receive sections up
        /// front (`joined.receive_slots`) and subscribes to nothing; joins renegotiate no one.
        #[arg(long)]
        receive_slots: bool,
        /// Record the room: enroll a recorder in the run's directory, create the room with a
        /// recording policy naming it (signed with a fresh admin key), run the `recorder`
        /// binary beside `sfu` and `signaling` and report its CPU beside the SFU's.
        #[arg(long, conflicts_with_all = ["receive_slots", "callers_only"])]
        record: bool,
    },
    /// One presenter and subscribe-only viewers.
    Broadcast {
        /// Number of viewers (1-500).
        #[arg(long)]
        viewers: usize,
        /// Viewers joining per second, as R or R/s (default: all at once).
        #[arg(long, value_parser = parse_rate)]
        join_rate: Option<f64>,
        /// No presenter: the viewers join a broadcast another generator hosts (needs --url and
        /// --room).
        #[arg(long)]
        viewers_only: bool,
        /// Fault injection (tests): every viewer ignores the key envelopes that reach it until
        /// it has sent a `key_request`, so it decrypts only through the key policy's recovery.
        #[arg(long, hide = true)]
        viewers_miss_keys: bool,
    },
    /// A plain UDP relay fanning the publisher's packet stream out to N receivers: the floor
    /// an SFU's cost per forwarded packet is compared with.
    Baseline {
        /// Receivers each packet is sent to (1-1000).
        #[arg(long, default_value_t = 50)]
        receivers: usize,
        /// Video bitrate in kb/s (0 for audio only); 1700 is the top camera layer.
        #[arg(long, default_value_t = 1700)]
        video_kbps: u32,
        /// Do not send Opus audio.
        #[arg(long)]
        no_audio: bool,
    },
    /// Add up the JSON reports of several generators that drove one room: counts summed,
    /// percentiles from the summed histograms; prints the summary table.
    Merge {
        /// The reports (`--report` files of meeting or broadcast runs).
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        /// Write the merged JSON report to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Parses `R` or `R/s` as a positive rate per second.
fn parse_rate(s: &str) -> Result<f64, String> {
    let number = s.strip_suffix("/s").unwrap_or(s);
    match number.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!("{s:?} is not a positive rate (e.g. 50 or 50/s)")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (name, result) = match &cli.command {
        Command::Meeting {
            callers,
            callers_only,
            receive_slots,
            record,
        } => (
            "meeting",
            common_config(&cli.common).and_then(|common| {
                run_meeting(
                    &common,
                    &MeetingConfig {
                        callers: *callers,
                        callers_only: *callers_only,
                        receive_slots: *receive_slots,
                        record: *record,
                    },
                )
                .map_err(|e| e.to_string())
            }),
        ),
        Command::Broadcast {
            viewers,
            join_rate,
            viewers_only,
            viewers_miss_keys,
        } => (
            "broadcast",
            common_config(&cli.common).and_then(|common| {
                run_broadcast(
                    &common,
                    &BroadcastConfig {
                        viewers: *viewers,
                        join_rate_per_s: *join_rate,
                        viewers_only: *viewers_only,
                        viewers_miss_keys: *viewers_miss_keys,
                    },
                )
                .map_err(|e| e.to_string())
            }),
        ),
        Command::Merge { reports, .. } => ("merge", merge(&cli.common, reports)),
        Command::Baseline {
            receivers,
            video_kbps,
            no_audio,
        } => (
            "baseline",
            baseline(&cli.common, *receivers, *video_kbps, !*no_audio),
        ),
    };
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            eprintln!("loadtest {name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", report.summary_table());
    let out = match &cli.command {
        Command::Merge { out, .. } => out,
        _ => &cli.common.report,
    };
    if let Some(path) = out {
        if let Err(e) = report.write_json(path) {
            eprintln!("loadtest {name}: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("report written to {}", path.display());
    }
    if report.media_stopped() {
        eprintln!(
            "loadtest {name}: media stopped during the run (outages above and in the report)"
        );
        return ExitCode::from(MEDIA_STOPPED_EXIT);
    }
    ExitCode::SUCCESS
}

/// `KEY:SECRET` as the signaling service reads it (`SIGNALING_API_KEYS`). The error never
/// repeats the value: it holds a secret.
fn parse_api_key(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((key, secret))
            if !key.is_empty()
                && !secret.is_empty()
                && !key.contains(['=', ','])
                && !secret.contains(',') =>
        {
            Ok((key.to_owned(), secret.to_owned()))
        }
        _ => Err(
            "--api-key (LOADTEST_API_KEY) must be KEY:SECRET: both non-empty, no comma, \
                  no = in KEY"
                .into(),
        ),
    }
}

fn common_config(args: &CommonArgs) -> Result<CommonConfig, String> {
    Ok(CommonConfig {
        duration: Duration::from_secs(args.duration),
        target: match &args.url {
            Some(url) => Target::Url {
                signaling: url.clone(),
                sfu_pid: args.sfu_pid,
                sfu_metrics: args.sfu_metrics.clone(),
            },
            None => Target::Spawn,
        },
        impairment: args.impair,
        seed: args.seed,
        room: args.room.clone(),
        first_index: args.first_index,
        api_key: args.api_key.as_deref().map(parse_api_key).transpose()?,
        admin_token: args.admin_token.clone().filter(|t| !t.is_empty()),
        viewer_engine: args.viewer_engine,
        workers: args.workers.map_or_else(
            || std::thread::available_parallelism().map_or(1, usize::from),
            usize::from,
        ),
    })
}

/// `loadtest merge`: reads every report, adds them up.
fn merge(args: &CommonArgs, paths: &[PathBuf]) -> Result<Report, String> {
    if args.url.is_some() || args.impair.is_some() || args.room.is_some() {
        return Err("merge adds up report files; --url, --impair and --room do not apply".into());
    }
    if args.report.is_some() {
        return Err("merge writes its report with --out".into());
    }
    let reports = paths
        .iter()
        .map(|p| read_report(p).map(|r| (p.display().to_string(), r)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    merge_reports(&reports).map_err(|e| e.to_string())
}

fn baseline(
    args: &CommonArgs,
    receivers: usize,
    video_kbps: u32,
    audio: bool,
) -> Result<Report, String> {
    if args.url.is_some() || args.room.is_some() {
        return Err("the baseline runs its own relay; --url and --room do not apply".into());
    }
    let config = BaselineConfig {
        receivers,
        duration: Duration::from_secs(args.duration),
        video_bitrate_bps: video_kbps.saturating_mul(1000),
        audio,
        impairment: args.impair,
        seed: args.seed,
    };
    // The baseline has no join phase: its receivers are sockets, ready at once.
    let progress = RunProgress::joining(&format!("baseline x{receivers}"), receivers as u64);
    progress.set_joined(receivers as u64);
    progress.start_running(config.duration);
    let outcome = run_baseline(&config, &mut |p: BaselineProgress| {
        progress.set_running(p.elapsed, format!("{} packets relayed", p.relayed));
    })
    .map_err(|e| e.to_string())?;
    progress.finish();

    let mut report = Report::new(Scenario::Baseline);
    report.duration_s = outcome.measured_s;
    report.impairment = args.impair.filter(|i| !i.is_none()).map(|i| i.to_string());
    report.participants = receivers as u64;
    report.joined = outcome.receivers_reached;
    report.frames_sent = outcome.packets_sent;
    report.set_receiver_totals(&outcome.totals);
    report.decrypt_failures = Some(outcome.decrypt_failures);
    report.set_relay_cost(outcome.relay_cpu_seconds, outcome.relay_packets_out);
    // The receivers' own cost: every packet read and reassembled, every frame SFrame-opened.
    report.set_generator_cost(outcome.receiver_cpu_seconds, Some(outcome.receiver_packets));
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn rates_parse_with_or_without_unit() {
        assert_eq!(parse_rate("50"), Ok(50.0));
        assert_eq!(parse_rate("12.5/s"), Ok(12.5));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("-3/s").is_err());
    }

    #[test]
    fn api_keys_parse_as_the_signaling_service_reads_them_and_errors_hide_the_secret() {
        assert_eq!(
            parse_api_key("lt:s3cret:x"),
            Ok(("lt".into(), "s3cret:x".into()))
        );
        for bad in ["nosecret", ":s3cret", "lt:", "a=b:s3cret", "lt:s3,cret"] {
            let err = parse_api_key(bad).unwrap_err();
            assert!(!err.contains("s3"), "{err}");
        }
    }

    #[test]
    fn a_joining_run_parses_with_url_room_and_credentials() {
        // (The integration test two_generators_drive_one_room gives them through the
        // environment, LOADTEST_API_KEY and LOADTEST_ADMIN_TOKEN, together with --url.)
        let parsed = Cli::try_parse_from([
            "loadtest",
            "broadcast",
            "--viewers",
            "3",
            "--viewers-only",
            "--room",
            "shared",
            "--url",
            "http://127.0.0.1:9",
            "--api-key",
            "lt:secret",
            "--admin-token",
            "admin",
        ])
        .unwrap();
        let common = common_config(&parsed.common).unwrap();
        assert_eq!(common.api_key, Some(("lt".into(), "secret".into())));
        assert_eq!(common.room.as_deref(), Some("shared"));
        assert!(Cli::try_parse_from(["loadtest", "merge"]).is_err());
    }
}
