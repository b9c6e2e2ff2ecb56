//! The `meeting` and `broadcast` scenarios: their configuration and limits, and the run.
//!
//! A run starts the services (or uses the ones at `--url`), creates the room, starts the
//! participants (each a [`crate::participant`] on a shared two-thread Tokio runtime), waits
//! for them to join, measures for the configured duration (the SFU's CPU, memory and
//! forwarded packets over exactly that phase, [`crate::sfu_cost`]), stops everyone and merges
//! what each receiver measured into a [`Report`]. Every phase is bounded: joining gives up
//! after [`join_timeout`], stopping after [`STOP_TIMEOUT`]. At the end of the measured phase the
//! publishers' sequence numbers are snapshotted, so that media which stopped (an SFU that died)
//! shows as outages and lost frames ([`crate::outage`]), not as a clean run.
//!
//! Several generator processes (or machines) can drive one room: one hosts it (a named
//! `--room`, the presenter of a broadcast), the others join it from `--url` with only viewers or
//! only callers ([`BroadcastConfig::viewers_only`], [`MeetingConfig::callers_only`]) and
//! participant numbers of their own ([`CommonConfig::first_index`]); `loadtest merge` adds their
//! reports up. Probe send times are on a clock every process shares ([`shared_epoch`]), so a
//! frame sent by one process and decrypted by another has a true latency.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::sync::watch;

use rand::RngExt as _;

use crate::histogram::DurationHistogram;
use crate::impairment::{Impairment, ImpairmentRelay, RelayConfig};
use crate::outage::{MeasuredWindow, ReceiverVerdict, judge_receiver};
use crate::participant::{
    LiveCounters, ParticipantOutcome, ParticipantSpec, Role, run_participant,
};
use crate::process_usage::CpuMeter;
use crate::progress::RunProgress;
use crate::receiver_stats::{StatsTotals, StreamKey};
use crate::recorder_cost::{RecorderCostError, RecorderCostMeter, RecorderProcess, RecorderSetup};
use crate::renegotiation::{RenegotiationStats, SfuCounters};
use crate::report::{Report, Scenario};
use crate::services::{Services, ServicesError};
use crate::sfu_cost::{SfuCostError, SfuCostMeter};
use crate::viewer_engine::{ViewerEngine, ViewerEngineKind, run_viewer};
use call_client::access_token::{Claims, GrantClaims};

/// Largest meeting (docs/architecture.md §4.5: rooms of up to 100 callers).
pub const MAX_CALLERS: usize = 100;

/// Largest broadcast audience (docs/architecture.md §4.5: 500-viewer broadcasts).
pub const MAX_VIEWERS: usize = 500;

/// The API key tokens are signed with against `--url` services when none is given: the one
/// `signaling dev` accepts.
pub const DEV_API_KEY: (&str, &str) = ("devkey", "devsecret");

/// A run that joins another generator's room numbers its participants from a random multiple
/// of this (1 to [`JOINING_BLOCKS`] blocks), unless told where to start: the hosting run uses
/// 0 up to [`MAX_VIEWERS`].
pub const JOINING_BLOCK: u16 = 1000;

/// How many [`JOINING_BLOCK`]s there are to draw from (the last one ends below `u16::MAX`).
pub const JOINING_BLOCKS: u16 = 64;

/// Where the services under test are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Services already running; the signaling service's base URL (`http://127.0.0.1:PORT`).
    Url {
        /// Signaling base URL.
        signaling: String,
        /// The SFU's process id on this machine, to read its CPU and memory, if known.
        sfu_pid: Option<u32>,
        /// The SFU's `/metrics` URL, to read the packets it forwarded, if known.
        sfu_metrics: Option<String>,
    },
    /// Start `signaling` and `sfu` from the same directory as `loadtest` and stop them after.
    Spawn,
}

/// Settings shared by every scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct CommonConfig {
    /// How long the measured phase lasts; the run stops by itself after it.
    pub duration: Duration,
    /// The services under test.
    pub target: Target,
    /// Impairment between every client and the SFU, if any.
    pub impairment: Option<Impairment>,
    /// Seed of every random choice of the run.
    pub seed: u64,
    /// The room to join (created first when an admin token is known; one that exists is joined),
    /// or `None` for a fresh room named after the run.
    pub room: Option<String>,
    /// The number of the run's first participant (its identity, device id and probe sender
    /// id; the others follow), or `None`: 0 for a run that hosts its room, a random multiple
    /// of [`JOINING_BLOCK`] for one that joins another generator's room.
    pub first_index: Option<u16>,
    /// API key id and secret the participants' tokens are signed with (the token issuer and
    /// HS256 secret). `None`: a fresh one for started services, [`DEV_API_KEY`] for `--url`.
    /// Started services accept exactly this key.
    pub api_key: Option<(String, String)>,
    /// Admin token to create the room with (without it, at `--url`, the room must exist).
    /// `None` for started services: a fresh one. Started services accept exactly this token.
    pub admin_token: Option<String>,
    /// The engine that runs broadcast viewers (`--viewer-engine`).
    pub viewer_engine: ViewerEngineKind,
    /// Worker threads (event loops) of the sans-IO viewer engine (`--workers`).
    pub workers: usize,
}

/// A meeting: every caller publishes audio and three-layer simulcast video and subscribes to
/// everyone else.
#[derive(Debug, Clone, PartialEq)]
pub struct MeetingConfig {
    /// Number of callers, 2 to [`MAX_CALLERS`] (1 with `callers_only`).
    pub callers: usize,
    /// The callers join a meeting another generator hosts (needs `--url` and a room): other
    /// callers are already there, so one is enough.
    pub callers_only: bool,
    /// Create the room with receive slots (`--receive-slots`): callers offer every receive
    /// section up front and send no subscriptions.
    pub receive_slots: bool,
    /// Record the room (`--record`): a recording policy naming a recorder enrolled for the run,
    /// and the real `recorder record` process recording it; its cost is in the report.
    pub record: bool,
}

/// A broadcast: one presenter publishes, viewers join at a set rate and only subscribe.
#[derive(Debug, Clone, PartialEq)]
pub struct BroadcastConfig {
    /// Number of viewers, 1 to [`MAX_VIEWERS`].
    pub viewers: usize,
    /// Viewers joining per second (all at once when `None`).
    pub join_rate_per_s: Option<f64>,
    /// Only viewers: the presenter is another generator's, in the room this run joins (needs
    /// `--url` and a room).
    pub viewers_only: bool,
    /// Fault injection (`--viewers-miss-keys`, for tests): every viewer ignores the key
    /// envelopes that reach it until it has sent a `key_request`.
    pub viewers_miss_keys: bool,
}

/// Why a scenario did not run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The scenario's configuration is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The services could not be started or the room created.
    #[error(transparent)]
    Services(#[from] ServicesError),
    /// The async runtime could not be built.
    #[error("runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The recorder could not be enrolled or started (`--record`).
    #[error(transparent)]
    Recorder(#[from] RecorderCostError),
    /// The SFU's cost could not be read.
    #[error(transparent)]
    Cost(#[from] SfuCostError),
    /// Not one participant joined: there is nothing to report.
    #[error("no participant joined (the first failures are listed above)")]
    NobodyJoined,
}

/// How long the recorder may take to finish its session (seal its last parts, write the
/// manifest) after SIGTERM.
const RECORDER_STOP_GRACE: Duration = Duration::from_secs(30);

/// How long participants may take to stop after the measured phase.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// How long joining may take: 20 s plus the time the join rate needs.
pub fn join_timeout(participants: usize, rate_per_s: Option<f64>) -> Duration {
    let paced = rate_per_s.map_or(0.0, |r| participants as f64 / r);
    Duration::from_secs(20) + Duration::from_secs_f64(paced)
}

fn check_common(common: &CommonConfig) -> Result<(), ScenarioError> {
    if common.duration.is_zero() || common.duration > Duration::from_secs(3600) {
        return Err(ScenarioError::Config(
            "duration must be between 1 s and 3600 s".into(),
        ));
    }
    if common.impairment.is_some_and(|i| !i.is_none())
        && matches!(common.target, Target::Url { .. })
    {
        return Err(ScenarioError::Config(
            "--impair needs the services loadtest starts itself (it puts the impairment relay \
             in front of the SFU's media port, which --url does not name)"
                .into(),
        ));
    }
    if let Some(room) = &common.room
        && !valid_room_name(room)
    {
        return Err(ScenarioError::Config(format!(
            "room {room:?}: a room name is 1-64 characters A-Z a-z 0-9 _ -"
        )));
    }
    Ok(())
}

/// The signaling service's rule for room names.
fn valid_room_name(room: &str) -> bool {
    (1..=64).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A run that joins a room another generator hosts (`--viewers-only`, `--callers-only`) needs
/// that room's services and name.
fn joining_valid(common: &CommonConfig, flag: &str) -> Result<(), ScenarioError> {
    if !matches!(common.target, Target::Url { .. }) {
        return Err(ScenarioError::Config(format!(
            "{flag} joins a room another generator hosts: give its services with --url"
        )));
    }
    if common.room.is_none() {
        return Err(ScenarioError::Config(format!(
            "{flag} joins a room another generator hosts: name it with --room"
        )));
    }
    Ok(())
}

/// The participants' numbers must fit the probe's 16-bit sender id.
fn numbers_valid(common: &CommonConfig, participants: usize) -> Result<(), ScenarioError> {
    let first = usize::from(common.first_index.unwrap_or(0));
    if first + participants > usize::from(u16::MAX) + 1 {
        return Err(ScenarioError::Config(format!(
            "participants numbered from {first} run past 65535"
        )));
    }
    Ok(())
}

fn meeting_valid(config: &MeetingConfig) -> Result<(), ScenarioError> {
    let fewest = if config.callers_only { 1 } else { 2 };
    if !(fewest..=MAX_CALLERS).contains(&config.callers) {
        return Err(ScenarioError::Config(format!(
            "callers must be {fewest}..={MAX_CALLERS}, got {}",
            config.callers
        )));
    }
    Ok(())
}

fn broadcast_valid(config: &BroadcastConfig) -> Result<(), ScenarioError> {
    if !(1..=MAX_VIEWERS).contains(&config.viewers) {
        return Err(ScenarioError::Config(format!(
            "viewers must be 1..={MAX_VIEWERS}, got {}",
            config.viewers
        )));
    }
    if let Some(rate) = config.join_rate_per_s
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err(ScenarioError::Config(format!(
            "join rate must be a positive number of viewers per second, got {rate}"
        )));
    }
    Ok(())
}

/// Runs a meeting: every caller publishes and subscribes.
pub fn run_meeting(common: &CommonConfig, config: &MeetingConfig) -> Result<Report, ScenarioError> {
    check_common(common)?;
    meeting_valid(config)?;
    if config.callers_only {
        joining_valid(common, "--callers-only")?;
    }
    numbers_valid(common, config.callers)?;
    let plan = Plan {
        scenario: Scenario::Meeting,
        kind: "meeting",
        label: if config.callers_only {
            format!("meeting +{} callers", config.callers)
        } else {
            format!("meeting x{}", config.callers)
        },
        joins_hosted_room: config.callers_only,
        first: Vec::new(),
        rest: (0..config.callers).map(|_| Role::Caller).collect(),
        rate_per_s: None,
        receive_slots: config.receive_slots,
        record: config.record,
        viewers_miss_keys: false,
    };
    run(common, &plan)
}

/// Runs a broadcast: the presenter joins and publishes first, then the viewers join.
pub fn run_broadcast(
    common: &CommonConfig,
    config: &BroadcastConfig,
) -> Result<Report, ScenarioError> {
    check_common(common)?;
    broadcast_valid(config)?;
    if config.viewers_only {
        joining_valid(common, "--viewers-only")?;
    }
    let presenters = usize::from(!config.viewers_only);
    numbers_valid(common, presenters + config.viewers)?;
    let plan = Plan {
        scenario: Scenario::Broadcast,
        kind: "broadcast",
        label: if config.viewers_only {
            format!("broadcast +{} viewers", config.viewers)
        } else {
            format!("broadcast 1+{}", config.viewers)
        },
        joins_hosted_room: config.viewers_only,
        first: vec![Role::Presenter; presenters],
        rest: (0..config.viewers).map(|_| Role::Viewer).collect(),
        rate_per_s: config.join_rate_per_s,
        // The sans-IO viewer engine does not offer receive slots yet.
        receive_slots: false,
        record: false,
        viewers_miss_keys: config.viewers_miss_keys,
    };
    run(common, &plan)
}

/// Who joins in which order.
struct Plan {
    scenario: Scenario,
    kind: &'static str,
    /// The progress bar's label.
    label: String,
    /// The run joins a room another generator hosts.
    joins_hosted_room: bool,
    /// Joined (and connected) before the rest start.
    first: Vec<Role>,
    /// Joined at `rate_per_s` (all at once when `None`).
    rest: Vec<Role>,
    rate_per_s: Option<f64>,
    /// The room is created with receive slots.
    receive_slots: bool,
    /// The room is recorded by a `recorder record` process the run starts.
    record: bool,
    /// Viewers ignore key envelopes until they asked for a key (fault injection).
    viewers_miss_keys: bool,
}

fn run(common: &CommonConfig, plan: &Plan) -> Result<Report, ScenarioError> {
    let services = match &common.target {
        Target::Spawn => Services::start(common.api_key.clone(), common.admin_token.clone())?,
        Target::Url {
            signaling,
            sfu_pid,
            sfu_metrics,
        } => Services::external(
            signaling,
            common
                .api_key
                .clone()
                .unwrap_or_else(|| (DEV_API_KEY.0.to_owned(), DEV_API_KEY.1.to_owned())),
            common.admin_token.clone(),
            *sfu_pid,
            sfu_metrics.clone(),
        ),
    };
    let result = run_with(common, plan, &services);
    if result.is_err()
        && let Some(dir) = &services.log_dir
    {
        eprintln!("service logs: {}", dir.display());
    }
    services.stop();
    result
}

fn run_with(
    common: &CommonConfig,
    plan: &Plan,
    services: &Services,
) -> Result<Report, ScenarioError> {
    let now_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let room = common.room.clone().unwrap_or_else(|| {
        format!(
            "lt-{}-{}-{}",
            plan.kind,
            std::process::id(),
            now_unix % 100_000
        )
    });
    let recorder = if plan.record {
        if services.admin_token.is_none() {
            return Err(ScenarioError::Config(
                "--record creates the room with a recording policy: it needs the admin token"
                    .into(),
            ));
        }
        let dir = services.log_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("loadtest-{}", std::process::id()))
        });
        std::fs::create_dir_all(&dir)
            .map_err(|e| ScenarioError::Config(format!("{}: {e}", dir.display())))?;
        let setup = RecorderSetup::prepare(&dir, &room, now_unix)?;
        eprintln!("recording to {}", setup.archive_dir().display());
        Some(setup)
    } else {
        None
    };
    services.create_room(
        &room,
        plan.kind,
        plan.receive_slots,
        recorder.as_ref().map(RecorderSetup::policy),
    )?;
    // The recorder joins before the callers; a room it finds without callers for 5 s ends its
    // session, so it starts only now, right before them.
    let recorder = match recorder {
        Some(setup) => Some(setup.start(
            &services.ws_url(),
            &room,
            &services.api_key,
            services.log_dir.as_ref().map(|d| d.join("recorder.log")),
        )?),
        None => None,
    };
    // The SFU's renegotiation counters before anyone joins (the run's share is the growth).
    let sfu_counters_before = services
        .sfu_metrics
        .as_deref()
        .and_then(SfuCounters::scrape);
    let first_index = common.first_index.unwrap_or_else(|| {
        if plan.joins_hosted_room {
            rand::rng().random_range(1..=JOINING_BLOCKS) * JOINING_BLOCK
        } else {
            0
        }
    });
    // Where another generator joins this run's room (`--url`, `--room`); a line a supervising
    // script or test can wait for.
    eprintln!(
        "room {room} at {} (participants numbered from {first_index})",
        services.base_url
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ScenarioError::Runtime)?;
    let total = plan.first.len() + plan.rest.len();
    let counters = Arc::new(LiveCounters::default());
    let epoch = shared_epoch();
    // Viewers on the sans-IO engine: its worker threads run beside the runtime, which keeps
    // their signaling (and the presenter).
    let engine = match common.viewer_engine {
        ViewerEngineKind::Sansio if plan.rest.contains(&Role::Viewer) => Some(
            ViewerEngine::start(common.workers, epoch, counters.clone())
                .map_err(ScenarioError::Runtime)?,
        ),
        _ => None,
    };
    let progress = RunProgress::joining(&plan.label, total as u64);
    let (stop_tx, stop) = watch::channel(false);
    let ttl =
        (join_timeout(total, plan.rate_per_s) + common.duration + STOP_TIMEOUT).as_secs() + 60;
    // With an impairment, every client's media crosses the relay (one upstream socket per
    // client, so the SFU still sees one address per participant); signaling does not.
    let relay = match (
        common.impairment.filter(|i| !i.is_none()),
        services.sfu_media,
    ) {
        (Some(impairment), Some(server)) => Some(
            ImpairmentRelay::start(RelayConfig {
                seed: common.seed,
                max_flows: total + 16,
                lifetime: Duration::from_secs(ttl),
                ..RelayConfig::symmetric(server, impairment)
            })
            .map_err(|e| ScenarioError::Config(format!("impairment relay: {e}")))?,
        ),
        (Some(_), None) => {
            return Err(ScenarioError::Config(
                "--impair needs the SFU's media address (services started by loadtest)".into(),
            ));
        }
        (None, _) => None,
    };
    let media_via = relay
        .as_ref()
        .zip(services.sfu_media)
        .map(|(r, server)| (server, r.local_addr()));
    // Identities carry the process id: two generators that drew the same numbers are refused
    // as duplicate devices instead of replacing each other's participants.
    let spec = |position: usize, role: Role| ParticipantSpec {
        index: first_index + position as u16,
        role,
        room: room.clone(),
        ws_url: services.ws_url(),
        token: Claims::new(
            services.api_key.0.clone(),
            GrantClaims {
                room: Some(room.clone()),
                identity: Some(format!(
                    "lt-{}-{}",
                    first_index + position as u16,
                    std::process::id()
                )),
                role: Some(match role {
                    Role::Caller => call_client::protocol::Role::Caller,
                    Role::Presenter => call_client::protocol::Role::Presenter,
                    Role::Viewer => call_client::protocol::Role::Viewer,
                }),
                can_publish: role != Role::Viewer,
                can_subscribe: true,
                moderator: false,
                device: None,
            },
            now_unix,
            ttl,
        )
        .sign(services.api_key.1.as_bytes()),
        epoch,
        seed: common.seed,
        media_via,
        miss_keys_until_request: plan.viewers_miss_keys && role == Role::Viewer,
    };

    let start_participant = |index: usize, role: Role| match (&engine, role) {
        (Some(engine), Role::Viewer) => tokio::spawn(run_viewer(
            engine,
            spec(index, role),
            counters.clone(),
            stop.clone(),
        )),
        _ => tokio::spawn(run_participant(
            spec(index, role),
            counters.clone(),
            stop.clone(),
        )),
    };
    let received = || engine.as_ref().map(|e| e.stats());

    let (outcomes, measured, cost, window, sent, generator, sfu_counters_after, recorder_cost) =
        runtime.block_on(async {
            let mut handles = Vec::with_capacity(total);
            let join_deadline = Instant::now() + join_timeout(total, plan.rate_per_s);
            for (i, role) in plan.first.iter().enumerate() {
                handles.push(start_participant(i, *role));
            }
            // The first participants (the presenter) connect before the others start.
            while (counters.joined.load(Ordering::Relaxed) as usize) < plan.first.len()
                && Instant::now() < join_deadline
                && !handles.iter().all(|h| h.is_finished())
            {
                progress.set_joined(counters.joined.load(Ordering::Relaxed));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let start_rest = Instant::now();
            let mut next = 0usize;
            while Instant::now() < join_deadline {
                // Start whoever is due by the join rate.
                let due = match plan.rate_per_s {
                    None => plan.rest.len(),
                    Some(r) => ((start_rest.elapsed().as_secs_f64() * r).floor() as usize + 1)
                        .min(plan.rest.len()),
                };
                while next < due {
                    let index = plan.first.len() + next;
                    handles.push(start_participant(index, plan.rest[next]));
                    next += 1;
                }
                let joined = counters.joined.load(Ordering::Relaxed);
                progress.set_joined(joined);
                let ended = handles.iter().filter(|h| h.is_finished()).count() as u64;
                if next == plan.rest.len() && joined + ended >= total as u64 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Measured phase.
            let meter = {
                let (pid, url) = (services.sfu_pid, services.sfu_metrics.clone());
                tokio::task::spawn_blocking(move || SfuCostMeter::start(pid, url.as_deref()))
                    .await
                    .ok()
            };
            let recorder_meter = match recorder.as_ref().map(RecorderProcess::probe) {
                Some(Ok(probe)) => {
                    tokio::task::spawn_blocking(move || RecorderCostMeter::start(probe))
                        .await
                        .ok()
                }
                Some(Err(e)) => Some(Err(e)),
                None => None,
            };
            progress.start_running(common.duration);
            // A line a supervising script or test can wait for (the progress bar is hidden when
            // stderr is not a terminal).
            eprintln!(
                "measuring for {} s ({} of {total} joined)",
                common.duration.as_secs(),
                counters.joined.load(Ordering::Relaxed)
            );
            // The generator's own cost over the same phase: this process, every thread.
            let generator_cpu = CpuMeter::start(std::process::id());
            let received_before = received();
            let started = Instant::now();
            let from_us = epoch.elapsed().as_micros() as u64;
            while started.elapsed() < common.duration {
                progress.set_running(
                    started.elapsed(),
                    format!(
                        "{} frames sent, {} decrypted",
                        counters.frames_sent.load(Ordering::Relaxed),
                        counters.frames_decrypted.load(Ordering::Relaxed)
                    ),
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let measured = started.elapsed();
            let window = MeasuredWindow {
                from_us,
                to_us: epoch.elapsed().as_micros() as u64,
            };
            let sent = counters.sent_streams.snapshot();
            let generator = generator_cpu
                .and_then(|m| m.elapsed())
                .ok()
                .map(|(cpu, _)| {
                    let packets = received().zip(received_before).map(|(b, a)| {
                        (
                            b.packets_received - a.packets_received,
                            b.packets_short_path - a.packets_short_path,
                        )
                    });
                    (cpu, packets)
                });
            let cost = match meter {
                Some(Ok(meter)) => tokio::task::spawn_blocking(move || meter.finish())
                    .await
                    .ok(),
                Some(Err(e)) => Some(Err(e)),
                None => None,
            };
            let sfu_cpu = match &cost {
                Some(Ok(c)) => c.cpu_seconds,
                _ => None,
            };
            let recorder_cost = match recorder_meter {
                Some(Ok(meter)) => {
                    let callers = total as u64;
                    tokio::task::spawn_blocking(move || meter.finish(sfu_cpu, callers))
                        .await
                        .ok()
                }
                Some(Err(e)) => Some(Err(e)),
                None => None,
            };
            let sfu_counters_after = match services.sfu_metrics.clone() {
                Some(url) => tokio::task::spawn_blocking(move || SfuCounters::scrape(&url))
                    .await
                    .ok()
                    .flatten(),
                None => None,
            };
            let _ = stop_tx.send(true);
            let mut outcomes = Vec::with_capacity(handles.len());
            for h in handles {
                match tokio::time::timeout(STOP_TIMEOUT, h).await {
                    Ok(Ok(o)) => outcomes.push(o),
                    _ => outcomes.push(ParticipantOutcome {
                        failure: Some("did not stop in time".into()),
                        ..Default::default()
                    }),
                }
            }
            (
                outcomes,
                measured,
                cost,
                window,
                sent,
                generator,
                sfu_counters_after,
                recorder_cost,
            )
        });
    // Stopped after the callers left: SIGTERM finishes its session (manifest written).
    if let Some(recorder) = recorder
        && let Err(e) = recorder.stop(RECORDER_STOP_GRACE)
    {
        eprintln!("recorder did not stop cleanly: {e}");
    }
    progress.finish();
    runtime.shutdown_timeout(Duration::from_secs(2));
    if let Some(engine) = engine {
        engine.stop();
    }
    let relay_stats = relay.map(ImpairmentRelay::stop);

    let mut report = Report::new(plan.scenario);
    report.duration_s = measured.as_secs_f64();
    report.target = match &common.target {
        Target::Url { signaling, .. } => Some(signaling.clone()),
        Target::Spawn => Some(services.base_url.clone()),
    };
    report.room = Some(room);
    report.participants = total as u64;
    report.impairment = relay_stats.and(common.impairment).map(|i| i.to_string());
    report.impairment_relay = relay_stats;
    merge_outcomes(&mut report, &outcomes, plan);
    if plan.rest.contains(&Role::Viewer) {
        report.viewer_engine = Some(common.viewer_engine.to_string());
    }
    if let Some((cpu, packets)) = generator {
        report.set_generator_cost(cpu, packets.map(|(received, _)| received));
        report.generator_packets_short_path = packets.map(|(_, short)| short);
    }
    merge_streams(&mut report, &outcomes, window, &sent);
    let (sfu_renegotiations, sfu_slot_reassignments) =
        match (sfu_counters_before, sfu_counters_after) {
            (Some(before), Some(after)) => {
                let (r, s) = after.since(&before);
                (Some(r), Some(s))
            }
            _ => (None, None),
        };
    report.renegotiation = Some(RenegotiationStats {
        receive_slots: plan.receive_slots,
        offers_to_existing_participants_after_join: outcomes
            .iter()
            .map(|o| o.offers_after_join)
            .sum(),
        sfu_renegotiations,
        sfu_slot_reassignments,
    });
    if report.joined == 0 {
        return Err(ScenarioError::NobodyJoined);
    }
    match recorder_cost {
        Some(Ok(cost)) => report.recorder = Some(cost),
        Some(Err(e)) => eprintln!("recorder cost not measured: {e}"),
        None => {}
    }
    match cost {
        Some(Ok(cost)) => cost.apply_to(&mut report),
        Some(Err(e)) => eprintln!("SFU cost not measured: {e}"),
        None => eprintln!("SFU cost not measured"),
    }
    Ok(report)
}

/// The run clock's origin: the Unix epoch, on the monotonic clock. Probe send times and arrival
/// times are microseconds since it, so a frame one generator process sent and another decrypted
/// has a true latency: exact between processes on one machine, off by the clocks' difference
/// between machines (NTP keeps it around a millisecond). Falls back to now (latency right
/// within this process only) where the monotonic clock cannot reach back that far.
fn shared_epoch() -> Instant {
    let now = Instant::now();
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|since_unix| now.checked_sub(since_unix))
        .unwrap_or_else(|| {
            eprintln!(
                "the run clock starts now: latency of frames from other generators is not measured"
            );
            now
        })
}

/// Fills the report's per-stream loss and outages from every receiver's frames, judged against
/// the publishers' snapshot at the end of the measured phase; the overall loss then includes
/// the frames lost after an outage that lasted to the end.
fn merge_streams(
    report: &mut Report,
    outcomes: &[ParticipantOutcome],
    window: MeasuredWindow,
    sent: &std::collections::HashMap<StreamKey, u32>,
) {
    let verdicts: Vec<ReceiverVerdict> = outcomes
        .iter()
        .map(|o| judge_receiver(&o.media, window, sent))
        .collect();
    let (streams, outages) = crate::outage::merge(&verdicts, window);
    let (expected, lost) = streams
        .iter()
        .fold((0, 0), |(e, l), s| (e + s.expected, l + s.lost));
    if expected > 0 {
        report.loss_pct = Some(100.0 * lost as f64 / expected as f64);
    }
    for o in &outages {
        eprintln!(
            "media stopped: {} receiver(s) got no frame for {:.1} s from {:.1} s into the measured phase{}",
            o.receivers,
            o.duration_s,
            o.start_s,
            if o.ongoing_at_end { " to its end" } else { "" }
        );
    }
    report.streams = Some(streams);
    report.outages = Some(outages);
}

/// Merges every participant's measurements into the report and prints the first failures.
fn merge_outcomes(report: &mut Report, outcomes: &[ParticipantOutcome], plan: &Plan) {
    let mut joins = DurationHistogram::new();
    let mut first_frames = DurationHistogram::new();
    let mut totals = StatsTotals::default();
    let (mut decrypt_failures, mut keyless, mut without_frames) = (0, 0, 0);
    let mut key_requests = 0;
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    let roles: Vec<Role> = plan.first.iter().chain(&plan.rest).copied().collect();
    for (o, role) in outcomes.iter().zip(roles) {
        if o.joined {
            report.joined += 1;
        }
        if let Some(ms) = o.join_ms {
            joins.record_ms(ms);
        }
        // Everyone but a broadcast presenter receives media.
        let receives = role != Role::Presenter;
        match o.first_frame_ms {
            Some(ms) => first_frames.record_ms(ms),
            None if receives => without_frames += 1,
            None => {}
        }
        totals.merge(&o.totals);
        decrypt_failures += o.decrypt_failures;
        keyless += o.frames_without_key;
        key_requests += o.key_requests_sent;
        report.frames_sent += o.frames_sent;
        for e in o.failure.iter().chain(&o.errors) {
            *failures.entry(e.clone()).or_default() += 1;
        }
    }
    report.set_join_times(&joins);
    report.set_first_frame_times(&first_frames);
    report.set_receiver_totals(&totals);
    report.decrypt_failures = Some(decrypt_failures);
    report.frames_without_key = Some(keyless);
    report.key_requests_sent = Some(key_requests);
    report.receivers_without_frames = Some(without_frames);
    for (e, n) in failures.iter().take(8) {
        eprintln!("{n} participant(s): {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn common() -> CommonConfig {
        CommonConfig {
            duration: Duration::from_secs(10),
            target: Target::Spawn,
            impairment: None,
            seed: 1,
            room: None,
            first_index: None,
            api_key: None,
            admin_token: None,
            viewer_engine: ViewerEngineKind::Sansio,
            workers: 1,
        }
    }

    #[test]
    fn impairment_with_external_services_is_refused_and_join_time_grows_with_the_rate() {
        let mut c = common();
        c.impairment = Some("loss=1%".parse().unwrap());
        c.target = Target::Url {
            signaling: "http://127.0.0.1:9".into(),
            sfu_pid: None,
            sfu_metrics: None,
        };
        assert!(matches!(
            run_meeting(
                &c,
                &MeetingConfig {
                    callers: 2,
                    callers_only: false,
                    receive_slots: false,
                    record: false,
                }
            ),
            Err(ScenarioError::Config(_))
        ));
        assert_eq!(join_timeout(500, None), Duration::from_secs(20));
        assert_eq!(join_timeout(500, Some(50.0)), Duration::from_secs(30));
    }

    #[test]
    fn out_of_range_sizes_are_refused_first() {
        for callers in [0, 1, 101] {
            assert!(matches!(
                run_meeting(
                    &common(),
                    &MeetingConfig {
                        callers,
                        callers_only: false,
                        receive_slots: false,
                        record: false,
                    }
                ),
                Err(ScenarioError::Config(_))
            ));
        }
        for (viewers, rate) in [
            (0, None),
            (501, None),
            (10, Some(0.0)),
            (10, Some(f64::NAN)),
        ] {
            assert!(matches!(
                run_broadcast(
                    &common(),
                    &BroadcastConfig {
                        viewers,
                        join_rate_per_s: rate,
                        viewers_only: false,
                        viewers_miss_keys: false,
                    }
                ),
                Err(ScenarioError::Config(_))
            ));
        }
        let mut long = common();
        long.duration = Duration::from_secs(3601);
        assert!(matches!(
            run_meeting(
                &long,
                &MeetingConfig {
                    callers: 2,
                    callers_only: false,
                    receive_slots: false,
                    record: false,
                }
            ),
            Err(ScenarioError::Config(_))
        ));
    }

    #[test]
    fn joining_another_generators_room_needs_its_url_a_room_and_numbers_that_fit() {
        let viewers_only = BroadcastConfig {
            viewers: 3,
            join_rate_per_s: None,
            viewers_only: true,
            viewers_miss_keys: false,
        };
        let config_error = |c: &CommonConfig, b: &BroadcastConfig| {
            matches!(run_broadcast(c, b), Err(ScenarioError::Config(_)))
        };
        // No --url, then no --room (the address is refused: port 9 on loopback).
        let mut c = common();
        c.room = Some("shared".into());
        assert!(config_error(&c, &viewers_only));
        c.target = Target::Url {
            signaling: "http://127.0.0.1:9".into(),
            sfu_pid: None,
            sfu_metrics: None,
        };
        c.room = None;
        assert!(config_error(&c, &viewers_only));
        c.room = Some("bad room!".into());
        assert!(config_error(&c, &viewers_only));
        c.room = Some("shared".into());
        c.first_index = Some(65_534);
        assert!(config_error(&c, &viewers_only));
        // One caller is enough to join a hosted meeting, not to hold one.
        let one = |callers_only| MeetingConfig {
            callers: 1,
            callers_only,
            receive_slots: false,
            record: false,
        };
        c.first_index = Some(2000);
        // With an admin token the room is created first: refused at once (nothing listens).
        c.admin_token = Some("admin".into());
        assert!(matches!(
            run_meeting(&c, &one(false)),
            Err(ScenarioError::Config(_))
        ));
        assert!(matches!(
            run_meeting(&c, &one(true)),
            Err(ScenarioError::Services(_))
        ));
        assert!(valid_room_name("lt-room_1") && !valid_room_name(&"r".repeat(65)));
    }

    #[test]
    fn run_clock_is_shared_by_processes() {
        // Two origins taken apart are the same instant (to the clocks' reading jitter): what a
        // second generator process computes too.
        let (a, b) = (shared_epoch(), shared_epoch());
        let apart = if a > b { a - b } else { b - a };
        assert!(apart < Duration::from_millis(5), "{apart:?}");
        assert!(a.elapsed() > Duration::from_secs(50 * 365 * 86_400));
    }
}
