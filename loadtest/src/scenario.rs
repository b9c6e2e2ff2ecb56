//! The `meeting` and `broadcast` scenarios: their configuration and limits, and where they will
//! run once the signaling service and the SFU can be driven.
//!
//! Until then both return [`ScenarioError::NotWired`] after validating their configuration:
//! a load test that printed numbers without real services behind them would be worse than none.
//! The pieces they will use exist and are tested: media sources ([`crate::media`]), probes
//! ([`crate::probe`]), receiver statistics ([`crate::receiver_stats`]), service processes
//! ([`crate::service_process`]), SFU cost ([`crate::sfu_cost`]), links
//! ([`crate::impairment`]) and the [`crate::report`].

use std::time::Duration;

use thiserror::Error;

use crate::impairment::Impairment;
use crate::report::Report;

/// Largest meeting (DESIGN.md: rooms of up to 100 callers).
pub const MAX_CALLERS: usize = 100;

/// Largest broadcast audience (DESIGN.md: 500-viewer broadcasts).
pub const MAX_VIEWERS: usize = 500;

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
}

/// A meeting: every caller publishes audio and three-layer simulcast video and subscribes to
/// everyone else.
#[derive(Debug, Clone, PartialEq)]
pub struct MeetingConfig {
    /// Number of callers, 2 to [`MAX_CALLERS`].
    pub callers: usize,
}

/// A broadcast: one presenter publishes, viewers join at a set rate and only subscribe.
#[derive(Debug, Clone, PartialEq)]
pub struct BroadcastConfig {
    /// Number of viewers, 1 to [`MAX_VIEWERS`].
    pub viewers: usize,
    /// Viewers joining per second (all at once when `None`).
    pub join_rate_per_s: Option<f64>,
}

/// Why a scenario did not run.
#[derive(Debug, Error, PartialEq)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The scenario's configuration is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The scenario cannot run yet: it needs the signaling service and the SFU.
    #[error(
        "not yet wired: needs signaling+SFU (the `{0}` scenario drives the real signaling \
         protocol and SFU, which cannot be driven yet; `loadtest baseline` runs today)"
    )]
    NotWired(&'static str),
}

fn check_common(common: &CommonConfig) -> Result<(), ScenarioError> {
    if common.duration.is_zero() || common.duration > Duration::from_secs(3600) {
        return Err(ScenarioError::Config(
            "duration must be between 1 s and 3600 s".into(),
        ));
    }
    Ok(())
}

/// Runs a meeting. Not wired yet: validates and returns [`ScenarioError::NotWired`].
pub fn run_meeting(common: &CommonConfig, config: &MeetingConfig) -> Result<Report, ScenarioError> {
    check_common(common)?;
    if !(2..=MAX_CALLERS).contains(&config.callers) {
        return Err(ScenarioError::Config(format!(
            "callers must be 2..={MAX_CALLERS}, got {}",
            config.callers
        )));
    }
    Err(ScenarioError::NotWired("meeting"))
}

/// Runs a broadcast. Not wired yet: validates and returns [`ScenarioError::NotWired`].
pub fn run_broadcast(
    common: &CommonConfig,
    config: &BroadcastConfig,
) -> Result<Report, ScenarioError> {
    check_common(common)?;
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
    Err(ScenarioError::NotWired("broadcast"))
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
        }
    }

    #[test]
    fn valid_scenarios_say_they_are_not_wired() {
        assert_eq!(
            run_meeting(&common(), &MeetingConfig { callers: 10 }),
            Err(ScenarioError::NotWired("meeting"))
        );
        assert_eq!(
            run_broadcast(
                &common(),
                &BroadcastConfig {
                    viewers: 500,
                    join_rate_per_s: Some(50.0)
                }
            ),
            Err(ScenarioError::NotWired("broadcast"))
        );
    }

    #[test]
    fn out_of_range_sizes_are_refused_first() {
        for callers in [0, 1, 101] {
            assert!(matches!(
                run_meeting(&common(), &MeetingConfig { callers }),
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
                        join_rate_per_s: rate
                    }
                ),
                Err(ScenarioError::Config(_))
            ));
        }
        let mut long = common();
        long.duration = Duration::from_secs(3601);
        assert!(matches!(
            run_meeting(&long, &MeetingConfig { callers: 2 }),
            Err(ScenarioError::Config(_))
        ));
    }
}
