//! Service configuration: a TOML file, overridden by environment variables and flags (see
//! `main.rs`), with defaults for everything but the secrets.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::auth::Secret;
use crate::cluster::ClusterSettings;
use crate::hub::HubSettings;
use crate::listener::HttpLimits;
use crate::media_node::PoolSettings;
use crate::policy::RecordingPolicy;
use crate::recorded_rooms::RecordedRoomsSettings;
use crate::room::RekeyTiming;
use crate::session::SessionLimits;
use crate::test_hooks::TestHooks;
use crate::turn_credentials::TurnCredentials;

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on for HTTP, WebSocket, admin and metrics.
    pub listen: SocketAddr,
    /// Bearer token for the admin API; the admin API refuses everything without one.
    pub admin_token: Option<Secret>,
    /// API keys: key id (the tokens' `iss`) → HS256 secret.
    pub api_keys: BTreeMap<String, Secret>,
    /// Whether a join may create a missing room (as an ephemeral meeting). Off in production.
    pub auto_create_rooms: bool,
    /// Whether rooms a join creates give every device receive slots (docs/architecture.md
    /// §7.18) instead of per-track subscriptions. Off by default.
    pub receive_slots: bool,
    /// Cameras of the most recent speakers each device of a room a join creates receives
    /// (1–25; the video slots of a slot room). Unset: the media node's default, 25.
    pub last_n: Option<u32>,
    /// Limits.
    pub limits: LimitsConfig,
    /// Membership notice timing.
    pub rekey: RekeyConfig,
    /// TURN servers whose credentials `joined` carries (none configured: no TURN).
    pub turn: TurnConfig,
    /// Recorded rooms: the policy rooms a join creates get, the compliance alert delay, the
    /// recorder event streams' queues.
    pub recording: RecordingConfig,
    /// The media nodes (`[media]`): how long a node of a pool may stay unreachable.
    pub media: MediaConfig,
    /// Several replicas serving one deployment (`[cluster]`): this replica's id, on the Redis of
    /// `media.redis_url`.
    pub cluster: ClusterConfig,
    /// After SIGTERM or SIGINT, the longest the service takes to close its WebSockets (1001),
    /// its rooms (on the media node too) and its HTTP connections before it exits, milliseconds.
    pub shutdown_timeout_ms: u64,
    /// Test-only misbehaviour: set by `signaling dev --test-hooks` only, never from a file.
    #[serde(skip)]
    pub test_hooks: TestHooks,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_token: None,
            api_keys: BTreeMap::new(),
            auto_create_rooms: false,
            receive_slots: false,
            last_n: None,
            limits: LimitsConfig::default(),
            rekey: RekeyConfig::default(),
            turn: TurnConfig::default(),
            recording: RecordingConfig::default(),
            media: MediaConfig::default(),
            cluster: ClusterConfig::default(),
            shutdown_timeout_ms: 10_000,
            test_hooks: TestHooks::default(),
        }
    }
}

/// Limits (see [`SessionLimits`]).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest client message, bytes.
    pub max_message_bytes: usize,
    /// Sustained client messages per second per connection.
    pub messages_per_second: u32,
    /// Burst above that.
    pub message_burst: u32,
    /// Sustained `key_envelope` messages per second from a device that may publish, counted
    /// apart from the other messages: a sender wraps each new key once per device in its
    /// roster, so a presenter's rekey in a large broadcast is one envelope per viewer.
    pub key_envelopes_per_second: u32,
    /// Burst of `key_envelope` messages above that (one rekey of the largest audience, twice).
    pub key_envelope_burst: u32,
    /// Rate-limited (dropped) messages tolerated within 10 s before the connection is closed
    /// (1008); accepted messages in between do not reset the count.
    pub flood_close_after: u32,
    /// New WebSocket connections per second per client IP.
    pub connections_per_second_per_ip: u32,
    /// Burst of new connections per client IP.
    pub connection_burst_per_ip: u32,
    /// Ping interval, milliseconds.
    pub ping_interval_ms: u64,
    /// Idle timeout, milliseconds.
    pub idle_timeout_ms: u64,
    /// Outbound queue per connection, messages.
    pub outbound_queue: usize,
    /// Longest one WebSocket write may block (a client that stops reading is dropped after it),
    /// milliseconds.
    pub write_timeout_ms: u64,
    /// Open TCP connections (HTTP and WebSocket) the listener holds at once; more are closed at
    /// accept.
    pub max_connections: usize,
    /// Open TCP connections per client IP; more are closed at accept.
    pub max_connections_per_ip: usize,
    /// Longest a connection may take to send a complete request head, milliseconds.
    pub header_read_timeout_ms: u64,
    /// An HTTP connection (not upgraded to a WebSocket) with no byte read or written for this
    /// long is closed, milliseconds.
    pub http_idle_timeout_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message_bytes: 64 * 1024,
            messages_per_second: 50,
            message_burst: 100,
            key_envelopes_per_second: 2_000,
            key_envelope_burst: 20_000,
            flood_close_after: 200,
            connections_per_second_per_ip: 10,
            connection_burst_per_ip: 50,
            ping_interval_ms: 15_000,
            idle_timeout_ms: 45_000,
            outbound_queue: 2048,
            write_timeout_ms: 10_000,
            max_connections: 10_000,
            max_connections_per_ip: 1_000,
            header_read_timeout_ms: 10_000,
            http_idle_timeout_ms: 60_000,
        }
    }
}

/// Membership notice timing (see [`RekeyTiming`]).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RekeyConfig {
    /// Debounce after a leave, milliseconds.
    pub debounce_ms: u64,
    /// Longest wait while leaves continue, milliseconds.
    pub max_delay_ms: u64,
    /// Least time between viewer-caused rekeys in broadcasts, milliseconds.
    pub broadcast_viewer_interval_ms: u64,
    /// Joins within this long of the first of a burst share one ratchet notice, milliseconds.
    pub join_window_ms: u64,
    /// Most joiners one ratchet notice names.
    pub join_batch_max: usize,
    /// How long a device whose connection was lost stays in the room, suspended, waiting to
    /// resume (`join.resume`) before it departs, milliseconds (0: it departs at once).
    pub resume_grace_ms: u64,
}

impl Default for RekeyConfig {
    fn default() -> Self {
        let t = RekeyTiming::default();
        RekeyConfig {
            debounce_ms: t.debounce.as_millis() as u64,
            max_delay_ms: t.max_delay.as_millis() as u64,
            broadcast_viewer_interval_ms: t.broadcast_viewer_interval.as_millis() as u64,
            join_window_ms: t.join_window.as_millis() as u64,
            join_batch_max: t.join_batch_max,
            resume_grace_ms: t.resume_grace.as_millis() as u64,
        }
    }
}

/// The media nodes (`[media]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// With several SFU nodes: a node unreachable for this long loses its rooms to the others
    /// (they are created on another node and their clients get `media_reset`
    /// `media_node_lost`), milliseconds. A single node's rooms wait for it.
    pub failover_after_ms: u64,
    /// An edge of a broadcast whose last viewer left is closed after this long without a
    /// viewer seated there again, milliseconds.
    pub edge_linger_ms: u64,
    /// The Redis of the SFU node registry (`redis://host:6379/0`): with several SFU nodes,
    /// rooms are placed by each node's own record (participants, capacity, drain state). A
    /// password may be in the URL, so it is never logged or shown.
    pub redis_url: Option<RedisUrl>,
    /// Key prefix of the registry in that Redis (the nodes' `--registry-prefix`).
    pub registry_prefix: String,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            failover_after_ms: PoolSettings::default().failover_after.as_millis() as u64,
            edge_linger_ms: PoolSettings::default().edge_linger.as_millis() as u64,
            redis_url: None,
            registry_prefix: sfu_registry::KeySpace::default().prefix().to_owned(),
        }
    }
}

/// Several replicas serving one deployment (`[cluster]`, docs/architecture.md §7.56).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// This replica's id, unique in the deployment (e.g. the pod name). Set: the replica joins
    /// the cluster on `media.redis_url` (rooms owned by leases, connections carried to their
    /// room's owner). Unset: one replica, rooms in memory.
    pub replica_id: Option<String>,
}

/// A Redis URL, which may hold a password: its `Debug` shows only that it is set.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct RedisUrl(pub String);

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisUrl(<redacted>)")
    }
}

/// Recorded rooms (`[recording]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingConfig {
    /// A JSON file holding one signed recording policy (as `signaling policy sign` prints it) or
    /// an array of them: a room a join creates whose name a policy's document names is created
    /// recorded under it. Rooms created through the admin API are not affected.
    pub policy_file: Option<PathBuf>,
    /// A recorded room with participants and no recorder for longer than this counts in
    /// `signaling_recorded_rooms_without_recorder`, milliseconds.
    pub alert_without_recorder_ms: u64,
    /// Events a recorder event stream may have queued; a stream that falls further behind is
    /// closed (its recorder reconnects).
    pub stream_queue: usize,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        let d = RecordedRoomsSettings::default();
        RecordingConfig {
            policy_file: None,
            alert_without_recorder_ms: d.unrecorded_alert_after.as_millis() as u64,
            stream_queue: d.stream_queue,
        }
    }
}

/// What `[recording] policy_file` holds: one policy or several.
#[derive(Deserialize)]
#[serde(untagged)]
enum PolicyFile {
    One(RecordingPolicy),
    Many(Vec<RecordingPolicy>),
}

/// TURN servers (coturn with `use-auth-secret`): each `joined` carries credentials for them,
/// minted with the shared secret (see [`TurnCredentials`]). No URLs: no TURN, and `joined` has
/// no `ice_servers`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TurnConfig {
    /// `turn:`/`turns:` URLs given to clients, e.g. `turns:<host>:443?transport=tcp`.
    pub urls: Vec<String>,
    /// The shared secret (coturn's `static-auth-secret`); prefer `secret_file`.
    pub secret: Option<Secret>,
    /// A file holding the shared secret (surrounding whitespace is ignored).
    pub secret_file: Option<PathBuf>,
    /// Lifetime of minted credentials, seconds. A relay allocation cannot be refreshed after
    /// its credential expires, so this should outlast the longest call.
    pub ttl_seconds: u64,
}

impl Default for TurnConfig {
    fn default() -> Self {
        TurnConfig {
            urls: Vec::new(),
            secret: None,
            secret_file: None,
            ttl_seconds: 12 * 3600,
        }
    }
}

/// A configuration problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration.
    #[error("parsing {path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The TOML error.
        source: toml::de::Error,
    },
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(&'static str),
    /// The TURN settings are refused.
    #[error("invalid TURN configuration: {0}")]
    Turn(#[from] crate::turn_credentials::TurnSettingsError),
    /// The recording policy file is unreadable or holds a malformed policy.
    #[error("recording policy file {path}: {reason}")]
    RecordingPolicy {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

impl Config {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    /// Checks ranges and builds the session limits.
    pub fn session_limits(&self) -> Result<SessionLimits, ConfigError> {
        let l = &self.limits;
        if l.max_message_bytes == 0 || l.max_message_bytes > 1 << 20 {
            return Err(ConfigError::Invalid(
                "limits.max_message_bytes must be 1..=1048576",
            ));
        }
        if l.ping_interval_ms == 0 || l.idle_timeout_ms <= l.ping_interval_ms {
            return Err(ConfigError::Invalid(
                "limits.idle_timeout_ms must exceed a non-zero limits.ping_interval_ms",
            ));
        }
        Ok(SessionLimits {
            max_message_bytes: l.max_message_bytes,
            messages_per_second: NonZeroU32::new(l.messages_per_second).ok_or(
                ConfigError::Invalid("limits.messages_per_second must be > 0"),
            )?,
            message_burst: NonZeroU32::new(l.message_burst)
                .ok_or(ConfigError::Invalid("limits.message_burst must be > 0"))?,
            key_envelopes_per_second: NonZeroU32::new(l.key_envelopes_per_second).ok_or(
                ConfigError::Invalid("limits.key_envelopes_per_second must be > 0"),
            )?,
            key_envelope_burst: NonZeroU32::new(l.key_envelope_burst).ok_or(
                ConfigError::Invalid("limits.key_envelope_burst must be > 0"),
            )?,
            flood_close_after: l.flood_close_after,
            ping_interval: Duration::from_millis(l.ping_interval_ms),
            idle_timeout: Duration::from_millis(l.idle_timeout_ms),
            write_timeout: nonzero_ms(l.write_timeout_ms, "limits.write_timeout_ms must be > 0")?,
        })
    }

    /// Checks ranges and builds the listener's connection limits.
    pub fn http_limits(&self) -> Result<HttpLimits, ConfigError> {
        let l = &self.limits;
        if l.max_connections == 0 || l.max_connections_per_ip == 0 {
            return Err(ConfigError::Invalid(
                "limits.max_connections and limits.max_connections_per_ip must be > 0",
            ));
        }
        Ok(HttpLimits {
            max_connections: l.max_connections,
            max_connections_per_ip: l.max_connections_per_ip,
            header_read_timeout: nonzero_ms(
                l.header_read_timeout_ms,
                "limits.header_read_timeout_ms must be > 0",
            )?,
            idle_timeout: nonzero_ms(
                l.http_idle_timeout_ms,
                "limits.http_idle_timeout_ms must be > 0",
            )?,
        })
    }

    /// The cluster settings (`None`: a single replica). A replica id needs `media.redis_url`
    /// and must be a short name (letters, digits, `-`, `_`, `.`).
    pub fn cluster_settings(&self) -> Result<Option<ClusterSettings>, ConfigError> {
        let Some(id) = self
            .cluster
            .replica_id
            .as_deref()
            .filter(|id| !id.is_empty())
        else {
            return Ok(None);
        };
        let shaped = id.len() <= 64
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !shaped {
            return Err(ConfigError::Invalid(
                "cluster.replica_id must be 1-64 letters, digits, '-', '_' or '.'",
            ));
        }
        let Some(url) = &self.media.redis_url else {
            return Err(ConfigError::Invalid(
                "cluster.replica_id needs media.redis_url (the cluster's Redis)",
            ));
        };
        Ok(Some(ClusterSettings {
            redis_url: url.0.clone(),
            prefix: self.media.registry_prefix.clone(),
            replica_id: id.to_owned(),
        }))
    }

    /// Checks the range and builds the settings of a pool of media nodes.
    pub fn pool_settings(&self) -> Result<PoolSettings, ConfigError> {
        Ok(PoolSettings {
            failover_after: nonzero_ms(
                self.media.failover_after_ms,
                "media.failover_after_ms must be > 0",
            )?,
            edge_linger: Duration::from_millis(self.media.edge_linger_ms),
        })
    }

    /// The shutdown timeout.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }

    /// Checks ranges and builds the hub settings.
    pub fn hub_settings(&self) -> Result<HubSettings, ConfigError> {
        if self.limits.outbound_queue == 0 {
            return Err(ConfigError::Invalid("limits.outbound_queue must be > 0"));
        }
        Ok(HubSettings {
            rekey: RekeyTiming {
                debounce: Duration::from_millis(self.rekey.debounce_ms),
                max_delay: Duration::from_millis(self.rekey.max_delay_ms),
                broadcast_viewer_interval: Duration::from_millis(
                    self.rekey.broadcast_viewer_interval_ms,
                ),
                join_window: Duration::from_millis(self.rekey.join_window_ms),
                join_batch_max: self.rekey.join_batch_max,
                resume_grace: Duration::from_millis(self.rekey.resume_grace_ms),
            },
            outbound_queue: self.limits.outbound_queue,
            turn: self.turn_credentials()?.map(std::sync::Arc::new),
            test_hooks: self.test_hooks.clone(),
            recorded_rooms: self.recorded_rooms_settings()?,
        })
    }

    /// Checks and builds the recorded-room directory's settings.
    pub fn recorded_rooms_settings(&self) -> Result<RecordedRoomsSettings, ConfigError> {
        let r = &self.recording;
        if r.stream_queue == 0 {
            return Err(ConfigError::Invalid("recording.stream_queue must be > 0"));
        }
        Ok(RecordedRoomsSettings {
            unrecorded_alert_after: nonzero_ms(
                r.alert_without_recorder_ms,
                "recording.alert_without_recorder_ms must be > 0",
            )?,
            stream_queue: r.stream_queue,
        })
    }

    /// The `last_n` of the rooms a join creates (and of `dev`'s demo room), checked: 1 to
    /// [`crate::policy::MAX_LAST_N`].
    pub fn auto_create_last_n(&self) -> Result<Option<u32>, ConfigError> {
        crate::policy::check_last_n(self.last_n)
            .map_err(|_| ConfigError::Invalid("last_n must be 1..=25"))
    }

    /// The policies of `[recording] policy_file` (none without one), each checked for shape.
    pub fn auto_create_recording_policies(&self) -> Result<Vec<RecordingPolicy>, ConfigError> {
        let Some(path) = &self.recording.policy_file else {
            return Ok(Vec::new());
        };
        let fail = |reason: String| ConfigError::RecordingPolicy {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let policies = match serde_json::from_str(&text).map_err(|e| fail(e.to_string()))? {
            PolicyFile::One(p) => vec![p],
            PolicyFile::Many(ps) => ps,
        };
        for p in &policies {
            p.document().map_err(|e| fail(e.to_string()))?;
        }
        Ok(policies)
    }

    /// The TURN credential minter, `None` when no TURN URL is configured; reads `turn.secret_file`.
    pub fn turn_credentials(&self) -> Result<Option<TurnCredentials>, ConfigError> {
        let t = &self.turn;
        if t.urls.is_empty() {
            if t.secret.is_some() || t.secret_file.is_some() {
                return Err(ConfigError::Invalid(
                    "a TURN secret is set but turn.urls (--turn-urls) is empty",
                ));
            }
            return Ok(None);
        }
        let secret = match (&t.secret, &t.secret_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid(
                    "set turn.secret or turn.secret_file, not both",
                ));
            }
            (None, None) => {
                return Err(ConfigError::Invalid(
                    "turn.urls (--turn-urls) needs the shared secret: turn.secret_file \
                     (--turn-secret-file) or turn.secret (SIGNALING_TURN_SECRET)",
                ));
            }
            (Some(s), None) => s.clone(),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                Secret::new(text.trim())
            }
        };
        Ok(Some(TurnCredentials::new(
            t.urls.clone(),
            secret,
            Duration::from_secs(t.ttl_seconds),
        )?))
    }

    /// The per-IP connection quota.
    pub fn connection_quota(&self) -> Result<governor::Quota, ConfigError> {
        let rate = NonZeroU32::new(self.limits.connections_per_second_per_ip).ok_or(
            ConfigError::Invalid("limits.connections_per_second_per_ip must be > 0"),
        )?;
        let burst = NonZeroU32::new(self.limits.connection_burst_per_ip).ok_or(
            ConfigError::Invalid("limits.connection_burst_per_ip must be > 0"),
        )?;
        Ok(governor::Quota::per_second(rate).allow_burst(burst))
    }
}

/// `ms` as a duration, refused when zero.
fn nonzero_ms(ms: u64, what: &'static str) -> Result<Duration, ConfigError> {
    if ms == 0 {
        return Err(ConfigError::Invalid(what));
    }
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_registry_from_toml_and_its_url_never_in_debug_output() {
        let c: Config = toml::from_str(
            "[media]\nredis_url = \"redis://:hunter2@127.0.0.1:6379/0\"\nregistry_prefix = \"blue\"",
        )
        .unwrap();
        let url = c.media.redis_url.as_ref().expect("redis_url read");
        assert_eq!(url.0, "redis://:hunter2@127.0.0.1:6379/0");
        assert_eq!(c.media.registry_prefix, "blue");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(Config::default().media.registry_prefix, "e2ee");
        assert!(Config::default().media.redis_url.is_none());
    }

    #[test]
    fn media_failover_delay_from_toml_defaults_to_3_s_and_refuses_zero() {
        assert_eq!(
            Config::default().pool_settings().unwrap().failover_after,
            Duration::from_millis(3000)
        );
        let c: Config = toml::from_str("[media]\nfailover_after_ms = 1500").unwrap();
        assert_eq!(
            c.pool_settings().unwrap().failover_after,
            Duration::from_millis(1500)
        );
        let zero: Config = toml::from_str("[media]\nfailover_after_ms = 0").unwrap();
        assert!(zero.pool_settings().is_err());
        assert!(toml::from_str::<Config>("[media]\nfailover_after = 1").is_err());
    }

    #[test]
    fn toml_file_overrides_defaults() {
        let c: Config = toml::from_str(
            r#"
            listen = "127.0.0.1:9000"
            admin_token = "adm"
            auto_create_rooms = true
            [api_keys]
            k1 = "s1"
            [limits]
            messages_per_second = 5
            [rekey]
            debounce_ms = 10
            "#,
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.api_keys["k1"].expose(), "s1");
        assert_eq!(c.limits.messages_per_second, 5);
        assert_eq!(c.limits.max_message_bytes, 65536);
        assert_eq!(
            c.hub_settings().unwrap().rekey.debounce,
            Duration::from_millis(10)
        );
        assert!(
            !format!("{c:?}").contains("adm\""),
            "secrets stay out of Debug"
        );
        assert!(toml::from_str::<Config>("nonsense = 1").is_err());
        assert!(
            c.turn_credentials().unwrap().is_none(),
            "no TURN by default"
        );
    }

    #[test]
    fn turn_settings_from_toml_and_secret_file() {
        let dir = std::env::temp_dir().join(format!("turn-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "north\n").unwrap();
        let c: Config = toml::from_str(&format!(
            r#"
            [turn]
            urls = ["turns:127.0.0.1:5349?transport=tcp"]
            secret_file = {file:?}
            ttl_seconds = 600
            "#
        ))
        .unwrap();
        let t = c.turn_credentials().unwrap().expect("TURN configured");
        assert_eq!(t.ttl(), Duration::from_secs(600));
        let minted = t.mint_with_id(1_700_085_800, "q3x9Zl0V");
        // The file's trailing newline is not part of the secret (see turn_credentials tests).
        assert_eq!(minted.credential, "fH/+D4iqqSjjTKMs2+2RSLvTWg0=");
        assert!(c.hub_settings().unwrap().turn.is_some());
        std::fs::remove_dir_all(&dir).unwrap();

        let mut bad = Config::default();
        bad.turn.secret = Some(Secret::new("s"));
        assert!(bad.turn_credentials().is_err(), "secret without URLs");
        bad.turn.urls = vec!["turn:127.0.0.1:3478".into()];
        assert!(bad.turn_credentials().unwrap().is_some());
        bad.turn.secret_file = Some(PathBuf::from("/nonexistent/turn-secret"));
        assert!(bad.turn_credentials().is_err(), "both secret and file");
        bad.turn.secret = None;
        assert!(matches!(
            bad.turn_credentials(),
            Err(ConfigError::Read { .. })
        ));
        bad.turn.secret_file = None;
        assert!(bad.turn_credentials().is_err(), "URLs without a secret");
    }
}
