//! `loadtest`: meeting and broadcast scenarios against a real SFU and signaling service, and a
//! plain-relay baseline. See `loadtest/README.md` for the commands and the report fields.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use loadtest::baseline::{BaselineConfig, BaselineProgress, run_baseline};
use loadtest::impairment::Impairment;
use loadtest::progress::RunProgress;
use loadtest::report::{Report, Scenario};
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
    /// With --url: the API key tokens are signed with, as KEY:SECRET (default: the
    /// `signaling dev` key).
    #[arg(
        long,
        global = true,
        requires = "url",
        env = "LOADTEST_API_KEY",
        hide_env_values = true,
        default_value = "devkey:devsecret"
    )]
    api_key: String,
    /// With --url: the admin token to create the room with (without it the room must exist
    /// or be auto-created by the service).
    #[arg(
        long,
        global = true,
        requires = "url",
        env = "LOADTEST_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
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
        /// Number of callers (2-100).
        #[arg(long)]
        callers: usize,
    },
    /// One presenter and subscribe-only viewers.
    Broadcast {
        /// Number of viewers (1-500).
        #[arg(long)]
        viewers: usize,
        /// Viewers joining per second, as R or R/s (default: all at once).
        #[arg(long, value_parser = parse_rate)]
        join_rate: Option<f64>,
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
        Command::Meeting { callers } => (
            "meeting",
            run_meeting(
                &common_config(&cli.common),
                &MeetingConfig { callers: *callers },
            )
            .map_err(|e| e.to_string()),
        ),
        Command::Broadcast { viewers, join_rate } => (
            "broadcast",
            run_broadcast(
                &common_config(&cli.common),
                &BroadcastConfig {
                    viewers: *viewers,
                    join_rate_per_s: *join_rate,
                },
            )
            .map_err(|e| e.to_string()),
        ),
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
    if let Some(path) = &cli.common.report {
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

fn common_config(args: &CommonArgs) -> CommonConfig {
    CommonConfig {
        duration: Duration::from_secs(args.duration),
        target: match &args.url {
            Some(url) => Target::Url {
                signaling: url.clone(),
                sfu_pid: args.sfu_pid,
                sfu_metrics: args.sfu_metrics.clone(),
                api_key: args
                    .api_key
                    .split_once(':')
                    .map(|(k, s)| (k.to_owned(), s.to_owned()))
                    .unwrap_or_else(|| (args.api_key.clone(), String::new())),
                admin_token: args.admin_token.clone(),
            },
            None => Target::Spawn,
        },
        impairment: args.impair,
        seed: args.seed,
        viewer_engine: args.viewer_engine,
        workers: args.workers.map_or_else(
            || std::thread::available_parallelism().map_or(1, usize::from),
            usize::from,
        ),
    }
}

fn baseline(
    args: &CommonArgs,
    receivers: usize,
    video_kbps: u32,
    audio: bool,
) -> Result<Report, String> {
    if args.url.is_some() {
        return Err("the baseline runs its own relay; --url does not apply".into());
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
    report.set_relay_cost(outcome.relay_cpu_seconds, outcome.relay_packets_out);
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
}
