//! `signaling`: the signaling service (`serve`), a development token issuer (`token`), the
//! admin's recording-policy tools (`policy keygen`, `policy sign`) and a one-process local
//! deployment (`dev`, with the `embedded-sfu` feature).
//!
//! `serve` refuses to start without API keys or without a media node (`--sfu-url`) unless told
//! it is a development run (`--development`), so a production deployment cannot come up
//! half-configured by accident.
//!
//! On SIGTERM or SIGINT the service drains (`signaling::server::RunningServer::drain`) within
//! its shutdown timeout and exits 0.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use axum::Router;
use clap::{Args, Parser, Subcommand};
#[cfg(feature = "embedded-sfu")]
use sfu::transport::{IceTcpConfig, TransportConfig};
use sfu_registry::{KeySpace, Registry, RegistryConfig};
use signaling::auth::{GrantClaims, Secret, TokenRequest, issue_token};
use signaling::config::{Config, RedisUrl};
#[cfg(feature = "embedded-sfu")]
use signaling::media_node::EmbeddedSfu;
use signaling::media_node::{
    MediaNode, NodeFactory, READ_EVERY, RemoteSfu, SfuPool, watch_registry,
};
use signaling::policy::Role;
use tracing_subscriber::EnvFilter;

/// API key id `signaling dev` accepts and `signaling token` signs with by default.
const DEV_API_KEY: &str = "devkey";
/// Its secret: for local development only.
const DEV_API_SECRET: &str = "devsecret";
/// Admin token of `signaling dev`.
#[cfg(feature = "embedded-sfu")]
const DEV_ADMIN_TOKEN: &str = "devadmin";

#[derive(Parser)]
#[command(
    name = "signaling",
    version,
    about = "End-to-end-encrypted conferencing: signaling service"
)]
struct Cli {
    /// Log filter, e.g. `info` or `signaling=debug,info` (falls back to `RUST_LOG`, then `info`).
    #[arg(long, env = "SIGNALING_LOG", global = true)]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the signaling service.
    Serve(Box<ServeArgs>),
    /// Run locally for development: signaling with dev keys and auto-created rooms.
    #[cfg(feature = "embedded-sfu")]
    Dev(DevArgs),
    /// Print a development access token (HS256 JWT).
    Token(TokenArgs),
    /// Admin signing keys and signed recording policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Make an admin signing key (a new file, mode 0600) and print its public key (base64url),
    /// the key clients are configured to trust.
    Keygen(KeygenArgs),
    /// Print a signed recording policy (JSON) for the admin API's `recording` field.
    Sign(SignArgs),
}

#[derive(Args)]
struct KeygenArgs {
    /// Where to write the key (must not exist).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct SignArgs {
    /// The admin signing key (`signaling policy keygen`).
    #[arg(long)]
    admin_key: PathBuf,
    /// The room the policy applies to.
    #[arg(long)]
    room: String,
    /// A recorder device as DEVICE=IDENTITY_KEY (base64url of its 32-byte Ed25519 key);
    /// repeatable.
    #[arg(long = "recorder")]
    recorders: Vec<String>,
    /// A file holding a recorder's device bundle JSON (as `recorder enroll` prints it); its
    /// signature is checked; repeatable.
    #[arg(long = "recorder-bundle")]
    recorder_bundles: Vec<PathBuf>,
    /// How long recordings of the room are kept, days (1-36500).
    #[arg(long)]
    retention_days: u32,
}

#[derive(Args)]
struct ServeArgs {
    /// TOML configuration file (flags and environment override it).
    #[arg(long, env = "SIGNALING_CONFIG")]
    config: Option<PathBuf>,
    /// Listen address (IP and port at once; `--bind-address`/`--http-port` override its parts).
    #[arg(long, env = "SIGNALING_LISTEN")]
    listen: Option<SocketAddr>,
    /// IP the HTTP and WebSocket port binds (containers use 0.0.0.0).
    #[arg(long, env = "SIGNALING_BIND_ADDRESS")]
    bind_address: Option<IpAddr>,
    /// HTTP and WebSocket port.
    #[arg(long, env = "SIGNALING_HTTP_PORT")]
    http_port: Option<u16>,
    /// Admin API bearer token.
    #[arg(long, env = "SIGNALING_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// API keys as KEY:SECRET or KEY=SECRET (repeatable or comma-separated; `--api-key` is an
    /// older name).
    #[arg(
        long = "api-keys",
        alias = "api-key",
        env = "SIGNALING_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    api_keys: Vec<String>,
    /// Let a join create a missing room as an ephemeral meeting.
    #[arg(long, env = "SIGNALING_AUTO_CREATE_ROOMS")]
    auto_create_rooms: Option<bool>,
    /// Rooms a join creates give every device receive slots (a fixed set of receive sections
    /// the SFU maps the room's tracks onto) instead of per-track subscriptions.
    #[arg(long, env = "SIGNALING_RECEIVE_SLOTS")]
    receive_slots: bool,
    /// Cameras of the most recent speakers each device of a room a join creates receives,
    /// 1-25 (default 25); with `--receive-slots`, the number of video slots.
    #[arg(long, env = "SIGNALING_LAST_N")]
    last_n: Option<u32>,
    /// The SFU nodes' control APIs, comma-separated, e.g. `http://127.0.0.1:7880` (`https://`
    /// across hosts); rooms are spread over them. Without it, SDP messages are answered
    /// `media_unavailable`.
    #[arg(long, env = "SIGNALING_SFU_URL")]
    sfu_url: Option<String>,
    /// Control URL prefixes, comma-separated (e.g. `http://sfu-`): with `--redis-url`, every SFU
    /// node that publishes a record in the registry under such a URL joins the pool as it
    /// appears (with or without `--sfu-url`). Default: none (only the listed nodes); a record
    /// under another URL is refused, as signaling sends its control secret to its nodes.
    #[arg(long, env = "SIGNALING_SFU_DISCOVER", value_delimiter = ',')]
    sfu_discover: Vec<String>,
    /// The SFU's control secret (its `SFU_CONTROL_SECRET`).
    #[arg(long, env = "SIGNALING_SFU_CONTROL_SECRET", hide_env_values = true)]
    sfu_control_secret: Option<String>,
    /// A CA certificate (PEM) to trust for an `https://` SFU URL, besides the system's roots.
    #[arg(long, env = "SIGNALING_SFU_CA_FILE")]
    sfu_ca_file: Option<PathBuf>,
    /// A JSON file with a signed recording policy (or an array of them): a room a join creates
    /// whose name a policy names is created recorded. The admin API is not affected.
    #[arg(long, env = "SIGNALING_RECORDING_POLICY")]
    recording_policy: Option<PathBuf>,
    /// A development run: start even without API keys or without `--sfu-url` (with a warning).
    #[arg(long, env = "SIGNALING_DEVELOPMENT")]
    development: bool,
    /// After SIGTERM/SIGINT, the longest the drain takes before the process exits, milliseconds.
    #[arg(long, env = "SIGNALING_SHUTDOWN_TIMEOUT_MS")]
    shutdown_timeout_ms: Option<u64>,
    /// With several SFU nodes: a node unreachable for this long loses its rooms to the other
    /// nodes (their clients get `media_reset`), milliseconds (default 3000).
    #[arg(long, env = "SIGNALING_FAILOVER_AFTER_MS")]
    failover_after_ms: Option<u64>,
    /// With several SFU nodes: the Redis of the SFU node registry (`redis://host:6379/0`);
    /// rooms go to the node with the fewest participants by its own record, never to one at
    /// its capacity, draining or without a live record. A password goes in the URL: set it
    /// in the environment, not on the command line.
    #[arg(long, env = "SIGNALING_REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// Key prefix of the node registry in that Redis (the nodes' `--registry-prefix`).
    #[arg(long, env = "SIGNALING_REGISTRY_PREFIX")]
    registry_prefix: Option<String>,
    /// This replica's id (unique in the deployment, e.g. the pod name): several replicas on
    /// the Redis of `--redis-url` serve one deployment; a client may connect to any of them
    /// (docs/architecture.md §7.56).
    #[arg(long, env = "SIGNALING_REPLICA_ID")]
    replica_id: Option<String>,
    #[command(flatten)]
    turn: TurnArgs,
}

/// TURN servers whose credentials `joined` carries (override `[turn]` of the config file).
#[derive(Args)]
struct TurnArgs {
    /// TURN server URLs given to clients, comma-separated, e.g.
    /// `turns:<host>:443?transport=tcp,turn:<host>:3478?transport=udp`.
    #[arg(long, env = "SIGNALING_TURN_URLS", value_delimiter = ',')]
    turn_urls: Vec<String>,
    /// File holding the TURN shared secret (coturn's `static-auth-secret`).
    #[arg(long, env = "SIGNALING_TURN_SECRET_FILE")]
    turn_secret_file: Option<PathBuf>,
    /// The TURN shared secret itself (prefer `--turn-secret-file`).
    #[arg(long, env = "SIGNALING_TURN_SECRET", hide_env_values = true)]
    turn_secret: Option<String>,
    /// Lifetime of minted TURN credentials, seconds (default 43200).
    #[arg(long, env = "SIGNALING_TURN_TTL_SECONDS")]
    turn_ttl_seconds: Option<u64>,
}

impl TurnArgs {
    fn apply(self, turn: &mut signaling::config::TurnConfig) {
        let urls: Vec<String> = self
            .turn_urls
            .into_iter()
            .filter(|u| !u.is_empty())
            .collect();
        if !urls.is_empty() {
            turn.urls = urls;
        }
        if let Some(f) = self.turn_secret_file {
            turn.secret_file = Some(f);
        }
        if let Some(s) = self.turn_secret.filter(|s| !s.is_empty()) {
            turn.secret = Some(Secret::new(s));
        }
        if let Some(t) = self.turn_ttl_seconds {
            turn.ttl_seconds = t;
        }
    }
}

#[cfg(feature = "embedded-sfu")]
#[derive(Args)]
struct DevArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// UDP port of the embedded SFU on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    udp_port: u16,
    /// TCP port of the embedded SFU's ICE-TCP listener on 127.0.0.1, for clients that cannot
    /// use UDP (0 or absent: off).
    #[arg(long)]
    ice_tcp_port: Option<u16>,
    /// Name of the demo room created at start.
    #[arg(long, default_value = "demo")]
    room: String,
    /// Test only: make the service misbehave on purpose (`lie-track-source`: `track_published`
    /// names a wrong publisher; `lie-slot-source`: `slots` names a wrong source), so tests can
    /// show clients trust the SFrame KID, not the server; `sever-connections`: the admin API can
    /// cut a device's WebSocket without a close frame, so tests can show clients reconnect.
    /// Exists on `dev` only; `serve` cannot lie.
    #[arg(long, value_enum, value_delimiter = ',')]
    test_hooks: Vec<signaling::test_hooks::TestHook>,
    /// The demo room and the rooms a join creates give every device receive slots instead of
    /// per-track subscriptions.
    #[arg(long)]
    receive_slots: bool,
    /// Cameras of the most recent speakers each device of the demo room and the rooms a join
    /// creates receives, 1-25 (default 25); with `--receive-slots`, the number of video slots.
    #[arg(long)]
    last_n: Option<u32>,
    /// A JSON file with a signed recording policy (or an array of them): a room a join creates
    /// whose name a policy names is created recorded.
    #[arg(long, env = "SIGNALING_RECORDING_POLICY")]
    recording_policy: Option<PathBuf>,
    #[command(flatten)]
    turn: TurnArgs,
}

/// Where `serve` finds its SFU.
struct SfuTarget {
    url: String,
    /// Control URL prefixes of nodes taken from the registry.
    discover: Vec<String>,
    secret: Secret,
    ca_pem: Option<Vec<u8>>,
}

#[derive(Args)]
struct TokenArgs {
    /// Room the token admits to.
    #[arg(long)]
    room: String,
    /// Identity of the bearer.
    #[arg(long)]
    identity: String,
    /// Role: caller, presenter, viewer or recorder.
    #[arg(long)]
    role: Role,
    /// Grant publishing (default: true for caller and presenter).
    #[arg(long)]
    can_publish: Option<bool>,
    /// Grant subscribing (default: true).
    #[arg(long)]
    can_subscribe: Option<bool>,
    /// Grant moderating the room (ask to mute, remove, lock, lobby, end the call).
    #[arg(long)]
    moderator: bool,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    /// API key id (`iss`).
    #[arg(long, env = "SIGNALING_API_KEY", default_value = DEV_API_KEY)]
    api_key: String,
    /// API key secret (defaults to the `signaling dev` secret).
    #[arg(long, env = "SIGNALING_API_SECRET", hide_env_values = true, default_value = DEV_API_SECRET)]
    api_secret: String,
}

fn parse_api_keys(pairs: &[String]) -> Result<BTreeMap<String, Secret>, String> {
    pairs
        .iter()
        .filter(|p| !p.is_empty())
        // `key_id:secret` is the deployment contract (deploy/README.md); `=` is accepted too.
        .map(|p| match p.split_once([':', '=']) {
            Some((k, s)) if !k.is_empty() && !s.is_empty() => Ok((k.to_string(), Secret::new(s))),
            _ => Err("--api-key must be KEY:SECRET".to_string()),
        })
        .collect()
}

fn sfu_target(args: &ServeArgs) -> Result<Option<SfuTarget>, String> {
    let url = args.sfu_url.clone().unwrap_or_default();
    let discover: Vec<String> = args
        .sfu_discover
        .iter()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    if url.trim().is_empty() && discover.is_empty() {
        return Ok(None);
    }
    if !discover.is_empty() && args.redis_url.as_deref().is_none_or(str::is_empty) {
        return Err("--sfu-discover needs --redis-url (SIGNALING_REDIS_URL): nodes are discovered in the node registry".into());
    }
    let secret = args
        .sfu_control_secret
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or(
            "--sfu-url and --sfu-discover need --sfu-control-secret (SIGNALING_SFU_CONTROL_SECRET)",
        )?;
    let ca_pem = match &args.sfu_ca_file {
        Some(path) => {
            Some(std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?)
        }
        None => None,
    };
    Ok(Some(SfuTarget {
        url,
        discover,
        secret: Secret::new(secret),
        ca_pem,
    }))
}

/// Refuses a `serve` that lacks API keys or a media node, unless it is a development run (then
/// it warns).
fn check_serve_settings(
    config: &Config,
    target: Option<&SfuTarget>,
    development: bool,
) -> Result<(), String> {
    let mut missing = Vec::new();
    if config.api_keys.is_empty() {
        missing.push(
            "no API keys, so every token would be refused: set --api-keys KEY:SECRET \
             (SIGNALING_API_KEYS) or `api_keys` in the config file",
        );
    }
    if target.is_none() {
        missing.push(
            "no media node, so every SDP offer would be answered media_unavailable: set \
             --sfu-url (SIGNALING_SFU_URL) to the SFU's control API",
        );
    }
    if missing.is_empty() {
        return Ok(());
    }
    if development {
        for m in &missing {
            tracing::warn!("development run: {m}");
        }
        return Ok(());
    }
    Err(format!(
        "refusing to start: {}; or pass --development (SIGNALING_DEVELOPMENT=true) for a \
         development run",
        missing.join("; ")
    ))
}

fn serve_config(args: ServeArgs) -> Result<Config, String> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(ip) = args.bind_address {
        config.listen.set_ip(ip);
    }
    if let Some(port) = args.http_port {
        config.listen.set_port(port);
    }
    if let Some(t) = args.admin_token {
        config.admin_token = Some(Secret::new(t));
    }
    config.api_keys.extend(parse_api_keys(&args.api_keys)?);
    if let Some(a) = args.auto_create_rooms {
        config.auto_create_rooms = a;
    }
    if args.receive_slots {
        config.receive_slots = true;
    }
    if let Some(n) = args.last_n {
        config.last_n = Some(n);
    }
    if let Some(path) = args.recording_policy {
        config.recording.policy_file = Some(path);
    }
    args.turn.apply(&mut config.turn);
    if let Some(ms) = args.shutdown_timeout_ms {
        config.shutdown_timeout_ms = ms;
    }
    if let Some(ms) = args.failover_after_ms {
        config.media.failover_after_ms = ms;
    }
    if let Some(url) = args.redis_url.clone().filter(|u| !u.is_empty()) {
        config.media.redis_url = Some(RedisUrl(url));
    }
    if let Some(prefix) = args.registry_prefix.clone() {
        config.media.registry_prefix = prefix;
    }
    if let Some(id) = args.replica_id.clone().filter(|id| !id.is_empty()) {
        config.cluster.replica_id = Some(id);
    }
    Ok(config)
}

/// The media node `run` attaches.
enum Media {
    /// A separate SFU process.
    Remote(SfuTarget),
    /// An SFU in this process on 127.0.0.1 (`dev`), with its UDP port, its ICE-TCP port (if
    /// on) and demo room.
    #[cfg(feature = "embedded-sfu")]
    Embedded {
        udp_port: u16,
        ice_tcp_port: Option<u16>,
        room: String,
    },
}

/// The media node of `serve`: one SFU, or a pool of the listed nodes, placed by the node
/// registry and grown by discovery when configured.
fn remote_media(config: &Config, t: SfuTarget) -> Result<Arc<dyn MediaNode>, String> {
    let settings = config.pool_settings().map_err(|e| e.to_string())?;
    let make: NodeFactory = {
        let secret = t.secret.clone();
        let ca_pem = t.ca_pem.clone();
        Arc::new(move |url: &str| {
            Ok(
                Arc::new(RemoteSfu::new(url, secret.clone(), ca_pem.as_deref())?)
                    as Arc<dyn MediaNode>,
            )
        })
    };
    let mut nodes: Vec<Arc<dyn MediaNode>> = Vec::new();
    for url in t.url.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        nodes.push(make(url).map_err(|e| e.to_string())?);
        tracing::info!(sfu = %url, "media through a separate SFU");
    }
    let registry = match &config.media.redis_url {
        None => None,
        Some(url) => Some(
            Registry::new(
                &url.0,
                RegistryConfig {
                    keys: KeySpace::new(config.media.registry_prefix.clone()),
                    ..RegistryConfig::default()
                },
            )
            .map_err(|e| format!("media.redis_url: {e}"))?,
        ),
    };
    let Some(registry) = registry else {
        return Ok(if nodes.len() == 1 {
            nodes.remove(0)
        } else {
            Arc::new(SfuPool::new(nodes, settings).map_err(|e| e.to_string())?)
        });
    };
    tracing::info!(prefix = %config.media.registry_prefix, discover = ?t.discover, "rooms placed by the SFU node registry");
    let snapshot = watch_registry(registry, READ_EVERY);
    let pool = if nodes.is_empty() {
        SfuPool::discovering(settings, snapshot, t.discover, make)
    } else {
        let pool = SfuPool::new(nodes, settings).and_then(|p| p.with_registry(snapshot));
        if t.discover.is_empty() {
            pool
        } else {
            pool.and_then(|p| p.with_discovery(t.discover, make))
        }
    };
    Ok(Arc::new(pool.map_err(|e| e.to_string())?))
}

async fn run(config: Config, media: Media) -> Result<(), String> {
    let (node, extra, demo_room): (Arc<dyn MediaNode>, Router, Option<String>) = match media {
        Media::Remote(t) => (remote_media(&config, t)?, Router::new(), None),
        #[cfg(feature = "embedded-sfu")]
        Media::Embedded {
            udp_port,
            ice_tcp_port,
            room,
        } => {
            let mut transport = TransportConfig::loopback();
            transport.bind.set_port(udp_port);
            transport.ice_tcp = ice_tcp_port.filter(|p| *p != 0).map(IceTcpConfig::on_port);
            let sfu = EmbeddedSfu::start(transport)
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(
                udp = %sfu.node().udp_addr(),
                ice_tcp = ?sfu.node().ice_tcp_addr(),
                "embedded SFU on loopback"
            );
            let ops = Router::new().nest("/sfu", sfu.ops_router());
            (Arc::new(sfu), ops, Some(room))
        }
    };
    let server = signaling::server::start_with_routes(&config, Some(node), extra)
        .await
        .map_err(|e| e.to_string())?;
    let addr = server.local_addr();
    tracing::info!(%addr, "serving /v1/rtc, /v1/rooms, /metrics, /healthz");
    if let Some(room) = demo_room {
        // The demo room is created here, not by a join, so it takes the `--recording-policy`
        // naming it here too (as a room a join creates would).
        let recording = config
            .auto_create_recording_policies()
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|p| p.document().is_ok_and(|d| d.applies_to(&room)));
        let policy = signaling::policy::RoomPolicy {
            receive_slots: config.receive_slots,
            last_n: config.last_n,
            recording,
            ..signaling::policy::RoomPolicy::default_meeting()
        };
        server
            .hub()
            .create_room(&room, policy, false)
            .await
            .map_err(|e| format!("demo room: {e}"))?;
        print_join_urls(addr, &room)?;
    }
    wait(server, config.shutdown_timeout()).await
}

/// Signaling alone: SDP and subscriptions are answered `media_unavailable`.
async fn run_without_media(config: Config) -> Result<(), String> {
    let server = signaling::server::start(&config, None)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(addr = %server.local_addr(), "serving /v1/rtc, /v1/rooms, /metrics, /healthz");
    wait(server, config.shutdown_timeout()).await
}

/// Serves until SIGTERM or SIGINT, then drains within `shutdown_timeout`.
async fn wait(
    mut server: signaling::server::RunningServer,
    shutdown_timeout: std::time::Duration,
) -> Result<(), String> {
    let signal = stop_signal()?;
    tokio::select! {
        r = server.wait() => return r.map_err(|e| e.to_string()),
        name = signal => tracing::info!(signal = name, ?shutdown_timeout, "draining"),
    }
    server.drain(shutdown_timeout).await;
    Ok(())
}

/// Resolves with the signal's name on the first SIGTERM or SIGINT (Ctrl-C).
#[cfg(unix)]
fn stop_signal() -> Result<impl std::future::Future<Output = &'static str>, String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM handler: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT handler: {e}"))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}

/// Resolves on the first Ctrl-C.
#[cfg(not(unix))]
fn stop_signal() -> Result<impl std::future::Future<Output = &'static str>, String> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    })
}

/// Prints two join links for the demo room (tokens in the fragment, which never reaches a
/// server log), for two browser windows; alice's token makes her the room's moderator.
fn print_join_urls(addr: SocketAddr, room: &str) -> Result<(), String> {
    println!("Demo room {room:?}: open each link in its own browser window.");
    for identity in ["alice", "bob"] {
        let token = issue_token(&TokenRequest {
            api_key: DEV_API_KEY.into(),
            secret: Secret::new(DEV_API_SECRET),
            grants: GrantClaims {
                room: Some(room.into()),
                identity: Some(identity.into()),
                role: Some(Role::Caller),
                can_publish: true,
                can_subscribe: true,
                moderator: identity == "alice",
                device: None,
            },
            ttl_seconds: 12 * 3600,
        });
        println!("  http://{addr}/#room={room}&name={identity}&test=1&join=1&token={token}");
    }
    Ok(())
}

/// The log filter: `--log`/`SIGNALING_LOG`, else `RUST_LOG`, else `info`.
fn log_filter(log: Option<&str>) -> Result<EnvFilter, String> {
    match log.filter(|l| !l.is_empty()) {
        Some(l) => EnvFilter::try_new(l).map_err(|e| format!("--log {l:?}: {e}")),
        None => Ok(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match log_filter(cli.log.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("signaling: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Token(args) => token(args),
        Command::Policy(PolicyCommand::Keygen(args)) => policy_keygen(&args),
        Command::Policy(PolicyCommand::Sign(args)) => policy_sign(args),
        Command::Serve(args) => sfu_target(&args).and_then(|target| {
            let development = args.development;
            let config = serve_config(*args)?;
            check_serve_settings(&config, target.as_ref(), development)?;
            match target {
                Some(t) => runtime()?.block_on(run(config, Media::Remote(t))),
                None => runtime()?.block_on(run_without_media(config)),
            }
        }),
        #[cfg(feature = "embedded-sfu")]
        Command::Dev(args) => {
            let mut config = Config {
                listen: args.listen,
                auto_create_rooms: true,
                receive_slots: args.receive_slots,
                last_n: args.last_n,
                admin_token: Some(Secret::new(DEV_ADMIN_TOKEN)),
                api_keys: BTreeMap::from([(DEV_API_KEY.to_string(), Secret::new(DEV_API_SECRET))]),
                ..Config::default()
            };
            args.turn.apply(&mut config.turn);
            config.recording.policy_file = args.recording_policy;
            config.test_hooks = signaling::test_hooks::TestHooks::enabled(&args.test_hooks);
            if config.test_hooks.any() {
                eprintln!(
                    "signaling dev: TEST HOOKS ON ({:?}): this service misbehaves towards its \
                     clients on purpose",
                    args.test_hooks
                );
            }
            eprintln!(
                "signaling dev: signaling and an SFU in one process on 127.0.0.1 (loopback only). \
                 API key {DEV_API_KEY}/{DEV_API_SECRET}, admin token {DEV_ADMIN_TOKEN}, rooms \
                 auto-created. More tokens: `signaling token --room R --identity I --role caller`."
            );
            let media = Media::Embedded {
                udp_port: args.udp_port,
                ice_tcp_port: args.ice_tcp_port,
                room: args.room,
            };
            runtime().and_then(|rt| rt.block_on(run(config, media)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("signaling: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))
}

fn token(args: TokenArgs) -> Result<(), String> {
    let req = TokenRequest {
        api_key: args.api_key,
        secret: Secret::new(args.api_secret),
        grants: GrantClaims {
            room: Some(args.room),
            identity: Some(args.identity),
            role: Some(args.role),
            can_publish: args.can_publish.unwrap_or(args.role.may_publish()),
            can_subscribe: args.can_subscribe.unwrap_or(true),
            moderator: args.moderator,
            device: None,
        },
        ttl_seconds: args.ttl,
    };
    let token = issue_token(&req);
    println!("{token}");
    Ok(())
}

fn policy_keygen(args: &KeygenArgs) -> Result<(), String> {
    let signer = signaling::policy_signing::keygen(&args.out).map_err(|e| e.to_string())?;
    eprintln!(
        "admin signing key written to {} (mode 0600); its public key:",
        args.out.display()
    );
    println!("{}", e2ee_frames::wire::b64_encode(&signer.public_key()));
    Ok(())
}

fn policy_sign(args: SignArgs) -> Result<(), String> {
    use signaling::policy_signing as ps;
    let signer = ps::read_key(&args.admin_key).map_err(|e| e.to_string())?;
    let mut recorders = args
        .recorders
        .iter()
        .map(|r| ps::parse_recorder(r))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    for path in &args.recorder_bundles {
        let json = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        recorders.push(ps::recorder_from_bundle(&json).map_err(|e| e.to_string())?);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let policy = ps::sign(&signer, &args.room, recorders, args.retention_days, now)
        .map_err(|e| e.to_string())?;
    // Strings and a number: serializing cannot fail.
    println!(
        "{}",
        serde_json::to_string(&policy).expect("policy serializes")
    );
    Ok(())
}
