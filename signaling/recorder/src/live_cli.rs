//! The live commands: `record` (one room) and `serve` (every active room of the event stream).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use tokio::sync::watch;

use crate::archive_cli::{ArchiveArgs, open_archive};
use crate::identity;
use crate::live::admission::AdminKeyError;
use crate::live::events::events_url;
use crate::live::metrics_server::spawn_metrics;
use crate::live::serve::serve;
use crate::live::{ApiCredentials, RecorderMetrics, RoomConfig, TrustedAdminKeys, record_room};

/// Live commands.
#[derive(Debug, Subcommand)]
pub enum LiveCommand {
    /// Records every room whose signed policy names this recorder, as they become active.
    Serve(Box<ServeArgs>),
    /// Records one room until only recorders are left in it (or SIGINT/SIGTERM).
    Record(Box<RecordArgs>),
}

/// The simulcast layer recorded of every camera.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum VideoLayer {
    /// The largest layer.
    High,
    /// The middle layer.
    Medium,
    /// The smallest layer.
    Low,
}

impl From<VideoLayer> for call_client::protocol::Layer {
    fn from(l: VideoLayer) -> Self {
        match l {
            VideoLayer::High => call_client::protocol::Layer::High,
            VideoLayer::Medium => call_client::protocol::Layer::Medium,
            VideoLayer::Low => call_client::protocol::Layer::Low,
        }
    }
}

/// What both live commands take.
#[derive(Debug, Args)]
pub struct LiveArgs {
    /// The signaling service's WebSocket URL (`ws://host:port/v1/rtc`).
    #[arg(long, env = "RECORDER_SIGNALING")]
    pub signaling: String,
    /// The API key the recorder mints its tokens with.
    #[arg(long, env = "RECORDER_API_KEY")]
    pub api_key: String,
    /// The API key's secret.
    #[arg(long, env = "RECORDER_API_SECRET", hide_env_values = true)]
    pub api_secret: String,
    /// An admin public key whose recording policies this recorder obeys: base64url, as
    /// `signaling policy keygen` printed it. Repeat it for several admins (the environment
    /// variable takes them comma-separated). Required: a room whose policy another key signed is
    /// refused and never recorded.
    #[arg(
        long = "trusted-admin-key",
        value_name = "KEY",
        env = "RECORDER_TRUSTED_ADMIN_KEYS",
        value_delimiter = ',',
        required = true,
        // A base64url key may start with `-` (one in 64 does): it is a value, not a flag.
        allow_hyphen_values = true,
        value_parser = admin_key
    )]
    pub trusted_admin_keys: Vec<[u8; 32]>,
    /// The archive.
    #[command(flatten)]
    pub archive: ArchiveArgs,
    /// The simulcast layer recorded of every camera.
    #[arg(long, value_enum, default_value = "high")]
    pub video_layer: VideoLayer,
    /// Serve Prometheus metrics on `http://ADDR/metrics`.
    #[arg(long, env = "RECORDER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

/// Parses one `--trusted-admin-key`.
fn admin_key(text: &str) -> Result<[u8; 32], AdminKeyError> {
    TrustedAdminKeys::parse_key(text)
}

/// `recorder record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The room to record.
    #[arg(long)]
    pub room: String,
    /// The service, the API key, the archive, the layer and the metrics address.
    #[command(flatten)]
    pub live: LiveArgs,
}

/// `recorder serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The service, the API key, the archive, the layer and the metrics address.
    #[command(flatten)]
    pub live: LiveArgs,
    /// Seconds shutdown waits for every session to finish.
    #[arg(long, default_value_t = 20)]
    pub shutdown_timeout_s: u64,
}

impl LiveCommand {
    /// Runs the command.
    pub fn run(self) -> Result<(), Box<dyn std::error::Error>> {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info".into()),
            )
            .try_init();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            match self {
                LiveCommand::Record(args) => record(*args).await,
                LiveCommand::Serve(args) => serve_command(*args).await,
            }
        })
    }
}

struct Prepared {
    template: RoomConfig,
    me: e2ee_frames::DeviceKeys,
    archive: Arc<dyn crate::sink::SessionArchive>,
    metrics: Arc<RecorderMetrics>,
    stop: watch::Receiver<bool>,
}

async fn prepare(live: &LiveArgs, room: &str) -> Result<Prepared, Box<dyn std::error::Error>> {
    // clap requires at least one key; `new` refuses none all the same.
    let trusted = TrustedAdminKeys::new(live.trusted_admin_keys.iter().copied())?;
    tracing::info!(
        ?trusted,
        "recording only rooms whose policy one of these admin keys signed"
    );
    let me = identity::load(&live.archive.state_dir)?;
    let archive = open_archive(&live.archive)?;
    let metrics = RecorderMetrics::new();
    if let Some(addr) = live.metrics_listen {
        let (bound, _task) = spawn_metrics(addr, metrics.clone()).await?;
        tracing::info!(%bound, "metrics on /metrics");
    }
    let mut template = RoomConfig::new(
        &live.signaling,
        room,
        ApiCredentials {
            key: live.api_key.clone(),
            secret: live.api_secret.clone(),
        },
        trusted,
    );
    template.video_layer = live.video_layer.into();
    Ok(Prepared {
        template,
        me,
        archive,
        metrics,
        stop: stop_on_signal(),
    })
}

async fn record(args: RecordArgs) -> Result<(), Box<dyn std::error::Error>> {
    let p = prepare(&args.live, &args.room).await?;
    let report = record_room(&p.template, p.me, p.archive, p.metrics, p.stop).await?;
    let summary = report.summary?;
    println!(
        "recorded {}: session {}, {} frames, {} bytes written ({} without key, {} refused, {} dropped for backlog)",
        report.room,
        summary.session_id,
        summary.frames,
        summary.bytes_written,
        report.media.frames_without_key,
        report.media.frames_refused,
        report.media.frames_backlogged
    );
    Ok(())
}

async fn serve_command(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let p = prepare(&args.live, "").await?;
    let events = events_url(&args.live.signaling)?;
    serve(
        p.template,
        events,
        p.me,
        p.archive,
        p.metrics,
        p.stop,
        Duration::from_secs(args.shutdown_timeout_s),
    )
    .await;
    Ok(())
}

/// A flag that turns true on SIGINT or SIGTERM.
fn stop_on_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        tracing::info!("signal: finishing every session");
        let _ = tx.send(true);
    });
    rx
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::LiveCommand;

    /// `recorder`'s live subcommands, as `main.rs` flattens them.
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: LiveCommand,
    }

    #[test]
    fn a_trusted_admin_key_that_starts_with_a_dash_is_a_value() {
        // 0xF8 0xF8 0xF8 … is `-Pj4…` in base64url.
        let key = e2ee_frames::wire::b64_encode(&[0xF8; 32]);
        assert!(key.starts_with('-'), "{key}");
        let cli = Cli::try_parse_from([
            "recorder",
            "record",
            "--room",
            "r",
            "--signaling",
            "ws://127.0.0.1:1/v1/rtc",
            "--api-key",
            "k",
            "--api-secret",
            "s",
            "--trusted-admin-key",
            &key,
            "--state-dir",
            "/nonexistent/state",
            "--archive-dir",
            "/nonexistent/archive",
            "--archive-recipient",
            "age1example",
        ])
        .unwrap_or_else(|e| panic!("parses: {e}"));
        let LiveCommand::Record(args) = cli.command else {
            panic!("record")
        };
        assert_eq!(args.live.trusted_admin_keys, vec![[0xF8; 32]]);
    }
}
