//! `sfu`: runs one SFU node (media on one UDP port; metrics, probes and the control API on one
//! HTTP port), or with `sfu drain` asks a running node on this host to drain.
//!
//! Settings come from flags, the environment and a TOML file (keys are the flag names with `-`
//! replaced by `_`), in that order of precedence; see `deploy/README.md` §1.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use serde::Deserialize;
use sfu::control::{self, ControlState};
use sfu::node::{NodeConfig, NodeHandle, Observer, start_node};
use sfu::ops::registry_heartbeat::{self, HeartbeatIdentity};
use sfu::ops::{self, HttpLimits, OpsState, SfuMetrics, tls};
use sfu::transport::{IceTcpConfig, SourceAllowList, TransportConfig};

#[derive(Parser, Debug)]
#[command(
    name = "sfu",
    version,
    about = "Selective forwarding unit for end-to-end-encrypted media"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Ask the SFU on 127.0.0.1:$SFU_HTTP_PORT to drain, then wait until it has no peers or the
    /// drain timeout passes (a Kubernetes preStop hook).
    Drain,
}

/// Every setting; `None` means "not given here" so the file and the defaults can fill it.
#[derive(Args, Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// TOML config file.
    #[arg(long, env = "SFU_CONFIG")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// IP the HTTP and UDP sockets bind.
    #[arg(long, env = "SFU_BIND_ADDRESS")]
    bind_address: Option<IpAddr>,
    /// HTTP port (metrics, probes, control API).
    #[arg(long, env = "SFU_HTTP_PORT")]
    http_port: Option<u16>,
    /// The one UDP media port.
    #[arg(long, env = "SFU_UDP_PORT")]
    udp_port: Option<u16>,
    /// TCP port for ICE-TCP (RFC 6544, passive), for clients whose network blocks UDP; 0 or
    /// absent: off.
    #[arg(long, env = "SFU_ICE_TCP_PORT")]
    ice_tcp_port: Option<u16>,
    /// The IP put in ICE candidates (required when binding 0.0.0.0).
    #[arg(long, env = "SFU_ADVERTISED_ADDRESS")]
    advertised_address: Option<IpAddr>,
    /// Name of this node in logs and the control API.
    #[arg(long, env = "SFU_NODE_ID")]
    node_id: Option<String>,
    /// Shared secret of the control API (from the environment or file, not a flag, in
    /// production: flags show in `ps`).
    #[arg(long, env = "SFU_CONTROL_SECRET", hide_env_values = true)]
    control_secret: Option<String>,
    /// Seconds to wait for peers to leave after SIGTERM.
    #[arg(long = "drain-timeout", env = "SFU_DRAIN_TIMEOUT_SECONDS")]
    drain_timeout: Option<u64>,
    /// `tracing` filter (then `RUST_LOG`, then `info`).
    #[arg(long, env = "SFU_LOG")]
    log: Option<String>,
    /// PEM certificate for HTTPS on the HTTP port.
    #[arg(long, env = "SFU_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM key for HTTPS on the HTTP port.
    #[arg(long, env = "SFU_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Most HTTP connections open at once (more are closed on accept).
    #[arg(long, env = "SFU_HTTP_MAX_CONNECTIONS")]
    http_max_connections: Option<usize>,
    /// Seconds a client has for the TLS handshake and each request's headers (also how long
    /// an idle kept-alive connection stays open).
    #[arg(long = "http-header-timeout", env = "SFU_HTTP_HEADER_TIMEOUT_SECONDS")]
    http_header_timeout: Option<u64>,
    /// Seconds to read a request's body and answer it (not a streamed event body).
    #[arg(
        long = "http-request-timeout",
        env = "SFU_HTTP_REQUEST_TIMEOUT_SECONDS"
    )]
    http_request_timeout: Option<u64>,
    /// `SO_RCVBUF` of the media socket in bytes (default: the system's).
    #[arg(long, env = "SFU_UDP_RECEIVE_BUFFER_BYTES")]
    udp_receive_buffer: Option<usize>,
    /// Comma-separated source networks whose media is answered (default: 127.0.0.0/8 when
    /// bound to loopback, everything otherwise).
    #[arg(long, env = "SFU_ALLOWED_SOURCES", value_delimiter = ',')]
    allowed_sources: Option<Vec<String>>,
    /// Redis of the node registry (`redis://host:6379/0`): the node publishes its record (control
    /// URL, load, drain state) there every second with a 3 s lease. Absent: no registry.
    #[arg(long, env = "SFU_REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// Key prefix in the registry's Redis (several deployments can share one). Default `e2ee`.
    #[arg(long, env = "SFU_REGISTRY_PREFIX")]
    registry_prefix: Option<String>,
    /// The control API's base URL as signaling reaches it, published in the registry. Default
    /// `http://<advertised address>:<http port>` (`https` with a certificate).
    #[arg(long, env = "SFU_CONTROL_URL")]
    control_url: Option<String>,
    /// Participants this node takes at most (further joins are refused; the registry tells
    /// placement). Absent: the transport's own limit, 4096.
    #[arg(long, env = "SFU_CAPACITY")]
    capacity: Option<u64>,
}

macro_rules! fill {
    ($into:ident, $from:ident, $($field:ident),*) => {
        $( if $into.$field.is_none() { $into.$field = $from.$field; } )*
    };
}

/// At most this much of the drain timeout is kept for the HTTP server to finish open requests
/// after the wait for peers (half of it, or half the timeout when that is shorter).
const DRAIN_HTTP_RESERVE: Duration = Duration::from_secs(2);

/// How often the node publishes its record to the registry (the lease is three of these).
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

/// Settings with defaults applied.
struct Resolved {
    bind: IpAddr,
    http_port: u16,
    udp_port: u16,
    /// ICE-TCP's port; `None` when off.
    ice_tcp_port: Option<u16>,
    advertised: IpAddr,
    node_id: String,
    secret: String,
    drain_timeout: Duration,
    allowed: Vec<IpNet>,
    /// Certificate and key files when the HTTP port serves HTTPS.
    tls: Option<(PathBuf, PathBuf)>,
    http_limits: HttpLimits,
    udp_receive_buffer: Option<usize>,
    /// The node registry, when `--redis-url` is given.
    registry: Option<RegistrySettings>,
    capacity: Option<u64>,
}

/// Where and how the node publishes its record.
struct RegistrySettings {
    url: String,
    prefix: String,
    control_url: String,
}

fn resolve(mut s: Settings) -> Result<(Resolved, Settings), String> {
    if let Some(path) = &s.config {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("config file {}: {e}", path.display()))?;
        let file: Settings =
            toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))?;
        fill!(
            s,
            file,
            bind_address,
            http_port,
            udp_port,
            ice_tcp_port,
            advertised_address,
            node_id,
            control_secret,
            drain_timeout,
            log,
            tls_cert,
            tls_key,
            allowed_sources,
            http_max_connections,
            http_header_timeout,
            http_request_timeout,
            udp_receive_buffer,
            redis_url,
            registry_prefix,
            control_url,
            capacity
        );
    }
    let bind = s.bind_address.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let advertised = match s.advertised_address {
        Some(a) => a,
        None if bind.is_unspecified() => {
            return Err(
                "SFU_ADVERTISED_ADDRESS is required when binding an unspecified address".into(),
            );
        }
        None => bind,
    };
    let secret = s
        .control_secret
        .clone()
        .ok_or("SFU_CONTROL_SECRET is required")?;
    let allowed = match &s.allowed_sources {
        Some(nets) => nets
            .iter()
            .map(|n| {
                n.trim()
                    .parse::<IpNet>()
                    .map_err(|e| format!("allowed source {n}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?,
        None if bind.is_loopback() => vec!["127.0.0.0/8".parse().map_err(|_| "network")?],
        None => vec![
            "0.0.0.0/0".parse().map_err(|_| "network")?,
            "::/0".parse().map_err(|_| "network")?,
        ],
    };
    let node_id = s.node_id.clone().unwrap_or_else(|| {
        std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "sfu".to_owned())
    });
    let tls = match (s.tls_cert.clone(), s.tls_key.clone()) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err("SFU_TLS_CERT and SFU_TLS_KEY must be given together".into()),
    };
    let http_port = s.http_port.unwrap_or(7880);
    if s.capacity == Some(0) {
        return Err("SFU_CAPACITY must be at least 1".into());
    }
    let registry = match &s.redis_url {
        None => None,
        Some(url) => Some(RegistrySettings {
            url: url.clone(),
            prefix: s
                .registry_prefix
                .clone()
                .unwrap_or_else(|| "e2ee".to_owned()),
            control_url: s.control_url.clone().unwrap_or_else(|| {
                let scheme = if tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{}", SocketAddr::new(advertised, http_port))
            }),
        }),
    };
    Ok((
        Resolved {
            bind,
            http_port,
            udp_port: s.udp_port.unwrap_or(7882),
            ice_tcp_port: s.ice_tcp_port.filter(|p| *p != 0),
            advertised,
            node_id,
            secret,
            drain_timeout: Duration::from_secs(s.drain_timeout.unwrap_or(60)),
            allowed,
            tls,
            http_limits: {
                let defaults = HttpLimits::default();
                HttpLimits {
                    max_connections: s.http_max_connections.unwrap_or(defaults.max_connections),
                    header_timeout: s
                        .http_header_timeout
                        .map_or(defaults.header_timeout, Duration::from_secs),
                    request_timeout: s
                        .http_request_timeout
                        .map_or(defaults.request_timeout, Duration::from_secs),
                }
            },
            udp_receive_buffer: s.udp_receive_buffer,
            registry,
            capacity: s.capacity,
        },
        s,
    ))
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let (resolved, settings) = match resolve(cli.settings) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sfu: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let filter = settings
        .log
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_owned());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sfu: tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Some(Command::Drain) => drain_client(&resolved).await,
            None => serve(resolved).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sfu: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(r: Resolved) -> Result<(), String> {
    // Load the TLS files before anything binds, so a bad certificate fails the start.
    let tls = match &r.tls {
        Some((cert, key)) => Some(tls::server_config(cert, key).map_err(|e| e.to_string())?),
        None => None,
    };
    let metrics = Arc::new(SfuMetrics::new().map_err(|e| e.to_string())?);
    let mut transport = TransportConfig::loopback();
    transport.bind = SocketAddr::new(r.bind, r.udp_port);
    transport.advertised_ip = r.advertised;
    transport.allowed_sources = SourceAllowList::new(r.allowed.clone());
    transport.receive_buffer_bytes = r.udp_receive_buffer;
    transport.ice_tcp = r.ice_tcp_port.map(IceTcpConfig::on_port);
    if let Some(capacity) = r.capacity {
        transport.max_peers = usize::try_from(capacity).unwrap_or(usize::MAX);
    }
    let node = start_node(
        NodeConfig {
            transport,
            forwarding: Default::default(),
        },
        Some(metrics.clone() as Arc<dyn Observer>),
    )
    .await
    .map_err(|e| format!("media transport: {e}"))?;
    let http_metrics = metrics.http_connections();
    let events = control::EventLog::start(node.events(), control::REPLAY_CAPACITY);
    let (stop_heartbeats, heartbeats_stopped) = tokio::sync::oneshot::channel::<()>();
    let heartbeats = match &r.registry {
        None => None,
        Some(settings) => {
            let registry = sfu_registry::Registry::new(
                &settings.url,
                sfu_registry::RegistryConfig {
                    keys: sfu_registry::KeySpace::new(settings.prefix.clone()),
                    ..Default::default()
                },
            )
            .map_err(|e| e.to_string())?;
            let identity = HeartbeatIdentity {
                node_id: r.node_id.clone(),
                instance: events.instance().to_owned(),
                control_url: settings.control_url.clone(),
                media_address: SocketAddr::new(r.advertised, node.udp_addr().port()).to_string(),
                capacity: r.capacity,
            };
            Some(tokio::spawn(registry_heartbeat::run(
                Arc::new(registry),
                node.clone(),
                identity,
                HEARTBEAT_INTERVAL,
                metrics.clone(),
                async move {
                    // A dropped sender stops the heartbeats as well.
                    let _ = heartbeats_stopped.await;
                },
            )))
        }
    };
    let app = ops::router(OpsState {
        node: node.clone(),
        metrics,
    })
    .merge(control::router_with_log(
        ControlState {
            node: node.clone(),
            secret: r.secret.as_str().into(),
            node_id: r.node_id.as_str().into(),
        },
        events,
    ));
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(r.bind, r.http_port))
        .await
        .map_err(|e| format!("HTTP port: {e}"))?;
    tracing::info!(
        node_id = %r.node_id,
        // The bound address: with `--http-port 0` the port the system chose.
        http = %listener.local_addr().unwrap_or(SocketAddr::new(r.bind, r.http_port)),
        https = tls.is_some(),
        udp = %node.udp_addr(),
        ice_tcp = ?node.ice_tcp_addr(),
        advertised = %r.advertised,
        "sfu serving"
    );
    let drain_node = node.clone();
    let drain_timeout = r.drain_timeout;
    let shutdown = async move {
        wait_for_sigterm().await;
        let deadline = tokio::time::Instant::now() + drain_timeout;
        drain(&drain_node, deadline).await;
        // What is left of the drain timeout is the HTTP server's grace period.
        deadline.saturating_duration_since(tokio::time::Instant::now())
    };
    let served = ops::serve(listener, tls, app, r.http_limits, http_metrics, shutdown)
        .await
        .map_err(|e| format!("HTTP server: {e}"));
    // Withdraw the record (bounded by the registry's own timeouts) before the process ends.
    let _ = stop_heartbeats.send(());
    if let Some(task) = heartbeats {
        let _ = tokio::time::timeout(HEARTBEAT_INTERVAL * 2, task).await;
    }
    served
}

/// Resolves on SIGTERM or Ctrl-C.
async fn wait_for_sigterm() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Stops admitting and ends the control event streams (so no listener holds the shutdown
/// open), then waits for the peers to leave until shortly before `deadline`; the rest of the
/// time is the HTTP server's to finish open requests. `/healthz` and `/readyz` answer
/// throughout.
async fn drain(node: &NodeHandle, deadline: tokio::time::Instant) {
    node.start_drain();
    node.stop_event_streams();
    tracing::info!(participants = node.participant_count(), "draining");
    let started = tokio::time::Instant::now();
    let reserve = deadline
        .saturating_duration_since(started)
        .min(DRAIN_HTTP_RESERVE)
        / 2;
    while node.participant_count() > 0 && tokio::time::Instant::now() + reserve < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::info!(participants = node.participant_count(), "drained; stopping");
}

/// One request to the local node (the workspace's HTTP client, reqwest; over HTTPS with the
/// node's own certificate pinned when it serves HTTPS); returns the status code and the body.
async fn local_request(
    r: &Resolved,
    method: reqwest::Method,
    path: &str,
) -> Result<(u16, String), String> {
    let host = if r.bind.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        r.bind
    };
    let node = SocketAddr::new(host, r.http_port);
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none());
    let (client, url) = match &r.tls {
        None => (client, format!("http://{node}{path}")),
        Some((cert, _)) => {
            // The node's own certificate, pinned: whatever name it carries, only it is accepted.
            let config = tls::pinned_client_config(cert).map_err(|e| e.to_string())?;
            (
                client.use_preconfigured_tls(Arc::unwrap_or_clone(config)),
                format!("https://{node}{path}"),
            )
        }
    };
    let client = client.build().map_err(|e| with_causes(&e))?;
    let response = client
        .request(method, url)
        .bearer_auth(&r.secret)
        .send()
        .await
        .map_err(|e| {
            if e.is_connect() {
                format!("connect to the local SFU: {}", with_causes(&e))
            } else {
                format!("request to the local SFU: {}", with_causes(&e))
            }
        })?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(|e| with_causes(&e))?;
    Ok((status, body))
}

/// An error's message and the causes under it (reqwest's own message does not say whether the
/// connection was refused or the certificate did not match).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

async fn drain_client(r: &Resolved) -> Result<(), String> {
    let (status, _) = local_request(r, reqwest::Method::POST, "/control/drain").await?;
    if status != 202 {
        return Err(format!("drain refused: HTTP {status}"));
    }
    let deadline = tokio::time::Instant::now() + r.drain_timeout;
    while tokio::time::Instant::now() < deadline {
        let (_, body) = local_request(r, reqwest::Method::GET, "/control/status").await?;
        let peers = serde_json::from_str::<serde_json::Value>(body.trim())
            .ok()
            .and_then(|v| v.get("participants").and_then(|p| p.as_u64()));
        if peers == Some(0) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}
