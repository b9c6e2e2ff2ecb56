//! What an impaired link does to packets, and its `key=value,...` text form.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use thiserror::Error;

/// Impairments of one direction of a link. The default is a perfect link.
///
/// Text form (the `--impair` flag): comma-separated `key=value` pairs, any subset, e.g.
/// `loss=2%,delay=40ms,jitter=10ms,reorder=1%,rate=2mbit`.
///
/// | key       | value                                                                 |
/// |-----------|-----------------------------------------------------------------------|
/// | `loss`    | probability a packet is dropped: `0.02` or `2%`                        |
/// | `delay`   | one-way delay added to every packet: `40ms`, `0.5s`, `800us` (bare = ms) |
/// | `jitter`  | each packet's delay varies uniformly within ± this much               |
/// | `reorder` | probability a packet skips the delay line and overtakes the ones in it |
/// | `rate`    | bandwidth cap: `2mbit`, `500kbit`, `64000bit` (bits per second)       |
/// | `queue`   | bytes that may wait for the rate cap before tail drop: `256kb`, `4mb`  |
///
/// Jitter never reorders by itself (packets leave in order, as on a real queueing link);
/// `reorder` follows netem: a chosen packet is sent without the added delay, so it needs a
/// non-zero `delay` to overtake anything.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Impairment {
    /// Probability (0–1) that a packet is dropped.
    pub loss: f64,
    /// Delay added to every packet.
    #[serde(serialize_with = "ser_ms")]
    pub delay: Duration,
    /// Half-width of the uniform variation of the delay.
    #[serde(serialize_with = "ser_ms")]
    pub jitter: Duration,
    /// Probability (0–1) that a packet bypasses the delay line.
    pub reorder: f64,
    /// Bandwidth cap in bits per second, if any.
    pub rate_bps: Option<u64>,
    /// Bytes allowed to queue behind the rate cap and delay line before packets are dropped.
    pub queue_limit_bytes: usize,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

impl Default for Impairment {
    fn default() -> Self {
        Impairment {
            loss: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            reorder: 0.0,
            rate_bps: None,
            queue_limit_bytes: 4 << 20,
        }
    }
}

impl Impairment {
    /// Whether this is a perfect link (nothing dropped, delayed or capped).
    pub fn is_none(&self) -> bool {
        self.loss == 0.0
            && self.delay.is_zero()
            && self.jitter.is_zero()
            && self.reorder == 0.0
            && self.rate_bps.is_none()
    }
}

/// Why an impairment string was refused.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImpairmentParseError {
    /// A part without `=`.
    #[error("expected key=value, got {0:?}")]
    NotKeyValue(String),
    /// A key other than the documented ones.
    #[error("unknown impairment {0:?} (known: loss, delay, jitter, reorder, rate, queue)")]
    UnknownKey(String),
    /// The same key twice.
    #[error("impairment {0:?} given twice")]
    Repeated(String),
    /// A value that does not parse or is out of range for its key.
    #[error("bad value {value:?} for {key}: {reason}")]
    BadValue {
        /// The key.
        key: String,
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

fn bad(key: &str, value: &str, reason: &'static str) -> ImpairmentParseError {
    ImpairmentParseError::BadValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    }
}

/// Parses a probability: `0.02` or `2%`.
fn parse_probability(key: &str, value: &str) -> Result<f64, ImpairmentParseError> {
    let (number, scale) = match value.strip_suffix('%') {
        Some(n) => (n, 0.01),
        None => (value, 1.0),
    };
    let p = number
        .trim()
        .parse::<f64>()
        .map_err(|_| bad(key, value, "not a number"))?
        * scale;
    if !(0.0..=1.0).contains(&p) {
        return Err(bad(key, value, "must be between 0 and 1 (or 0% and 100%)"));
    }
    Ok(p)
}

/// Parses a duration: `40ms`, `0.5s`, `800us`; a bare number is milliseconds.
fn parse_duration(key: &str, value: &str) -> Result<Duration, ImpairmentParseError> {
    let (number, unit_secs) = if let Some(n) = value.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = value.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1.0)
    } else {
        (value, 1e-3)
    };
    let n = number
        .trim()
        .parse::<f64>()
        .map_err(|_| bad(key, value, "not a number"))?;
    let secs = n * unit_secs;
    if !secs.is_finite() || !(0.0..=60.0).contains(&secs) {
        return Err(bad(key, value, "must be between 0 and 60 s"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a size with an optional unit, returning units of `base` (bits or bytes).
fn parse_scaled(
    key: &str,
    value: &str,
    units: &[(&str, f64)],
) -> Result<f64, ImpairmentParseError> {
    let lower = value.to_ascii_lowercase();
    let (number, scale) = units
        .iter()
        .find_map(|(suffix, scale)| lower.strip_suffix(suffix).map(|n| (n.to_owned(), *scale)))
        .unwrap_or((lower.clone(), 1.0));
    let n = number
        .trim()
        .parse::<f64>()
        .map_err(|_| bad(key, value, "not a number"))?;
    let v = n * scale;
    if !(1.0..=1e12).contains(&v) {
        return Err(bad(key, value, "out of range"));
    }
    Ok(v)
}

impl FromStr for Impairment {
    type Err = ImpairmentParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = Impairment::default();
        let mut seen: Vec<&str> = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| ImpairmentParseError::NotKeyValue(part.to_owned()))?;
            let (key, value) = (key.trim(), value.trim());
            if seen.contains(&key) {
                return Err(ImpairmentParseError::Repeated(key.to_owned()));
            }
            match key {
                "loss" => out.loss = parse_probability(key, value)?,
                "reorder" => out.reorder = parse_probability(key, value)?,
                "delay" => out.delay = parse_duration(key, value)?,
                "jitter" => out.jitter = parse_duration(key, value)?,
                "rate" => {
                    let bps = parse_scaled(
                        key,
                        value,
                        &[("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)],
                    )?;
                    out.rate_bps = Some(bps.round() as u64);
                }
                "queue" => {
                    let bytes =
                        parse_scaled(key, value, &[("mb", 1048576.0), ("kb", 1024.0), ("b", 1.0)])?;
                    out.queue_limit_bytes = bytes.round() as usize;
                }
                other => return Err(ImpairmentParseError::UnknownKey(other.to_owned())),
            }
            seen.push(key);
        }
        Ok(out)
    }
}

impl fmt::Display for Impairment {
    /// The `--impair` form of the non-default settings (`loss=0%` for a perfect link).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_micros() as f64 / 1000.0;
        let default = Impairment::default();
        let mut parts = Vec::new();
        if self.loss != 0.0 || self.is_none() {
            parts.push(format!("loss={}%", self.loss * 100.0));
        }
        if !self.delay.is_zero() {
            parts.push(format!("delay={}ms", ms(self.delay)));
        }
        if !self.jitter.is_zero() {
            parts.push(format!("jitter={}ms", ms(self.jitter)));
        }
        if self.reorder != 0.0 {
            parts.push(format!("reorder={}%", self.reorder * 100.0));
        }
        if let Some(rate) = self.rate_bps {
            parts.push(format!("rate={rate}bit"));
        }
        if self.queue_limit_bytes != default.queue_limit_bytes {
            parts.push(format!("queue={}b", self.queue_limit_bytes));
        }
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_key_and_unit() {
        let i: Impairment = "loss=2%, delay=40ms,jitter=0.5s,reorder=0.25,rate=2mbit,queue=64kb"
            .parse()
            .unwrap();
        assert!((i.loss - 0.02).abs() < 1e-12);
        assert_eq!(i.delay, Duration::from_millis(40));
        assert_eq!(i.jitter, Duration::from_millis(500));
        assert!((i.reorder - 0.25).abs() < 1e-12);
        assert_eq!(i.rate_bps, Some(2_000_000));
        assert_eq!(i.queue_limit_bytes, 65536);
        let j: Impairment = "delay=15,jitter=800us,rate=500kbit".parse().unwrap();
        assert_eq!(j.delay, Duration::from_millis(15));
        assert_eq!(j.jitter, Duration::from_micros(800));
        assert_eq!(j.rate_bps, Some(500_000));
    }

    #[test]
    fn empty_is_a_perfect_link_and_display_round_trips() {
        let none: Impairment = "".parse().unwrap();
        assert!(none.is_none());
        let i: Impairment = "loss=5%,delay=20ms,jitter=3ms,reorder=1%,rate=1mbit"
            .parse()
            .unwrap();
        let again: Impairment = i.to_string().parse().unwrap();
        assert_eq!(i, again);
        assert_eq!(
            "delay=40ms,queue=64kb"
                .parse::<Impairment>()
                .unwrap()
                .to_string(),
            "delay=40ms,queue=65536b"
        );
        assert_eq!(Impairment::default().to_string(), "loss=0%");
    }

    #[test]
    fn bad_input_is_an_error() {
        for s in [
            "loss",
            "loss=2",
            "loss=-1%",
            "loss=abc",
            "delay=5m",
            "delay=61s",
            "jitter=-3ms",
            "rate=0",
            "rate=fastbit",
            "speed=1",
            "loss=1%,loss=2%",
        ] {
            assert!(s.parse::<Impairment>().is_err(), "{s} should be refused");
        }
    }
}
