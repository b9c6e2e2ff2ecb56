//! Reads counters from a service's Prometheus `/metrics` page.
//!
//! The parser covers the text exposition format 0.0.4 as the `prometheus` crate writes it and
//! as Prometheus reads it: `# HELP`/`# TYPE`/other comments skipped, `name{label="value",...}
//! value [timestamp]`, label values with the `\\`, `\"` and `\n` escapes (and `,`, `}` or `=`
//! inside quotes), an optional trailing comma, values including `+Inf`, `-Inf` and `NaN`.
//! It is small and hand-written because the crates that parse this format are regex-based
//! one-offs that have not kept up (label values containing `,` or `\"` trip some of them); the
//! tests below pin the cases that matter.

use std::time::Duration;

use thiserror::Error;

use crate::http_client::{self, HttpError};

/// Largest `/metrics` body read (a page is tens of kilobytes; anything bigger is refused).
const MAX_BODY: u64 = 8 << 20;

/// One sample: a metric name, its labels and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name, with any `_total`, `_bucket`, `_sum`, `_count` suffix as written.
    pub name: String,
    /// Label pairs in the order written, values unescaped.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// The value of label `key`, if present.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed `/metrics` page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    /// Every sample in page order.
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// Sum of the samples named `name` whose labels include every `(key, value)` of `filter`
    /// (e.g. `sfu_packets_sent_total` with `[("type", "initial")]` sums over `kind`), or `None`
    /// when no sample matches: a missing counter is not reported as zero.
    pub fn sum(&self, name: &str, filter: &[(&str, &str)]) -> Option<f64> {
        let mut matched = false;
        let total = self
            .samples
            .iter()
            .filter(|s| s.name == name && filter.iter().all(|(k, v)| s.label(k) == Some(v)))
            .inspect(|_| matched = true)
            .map(|s| s.value)
            .sum();
        matched.then_some(total)
    }
}

/// Why a page could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: &'static str,
}

/// Why a scrape failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ScrapeError {
    /// The HTTP request failed (connection refused, timeout, non-2xx, oversized body).
    #[error("GET {url}: {source}")]
    Http {
        /// The URL.
        url: String,
        /// What the HTTP client said.
        #[source]
        source: Box<HttpError>,
    },
    /// The page is not valid exposition text.
    #[error("parsing {url}: {source}")]
    Parse {
        /// The URL.
        url: String,
        /// Where and why.
        #[source]
        source: ParseError,
    },
}

/// Fetches and parses `url` (an `http://127.0.0.1:.../metrics` address), with `timeout` for the
/// whole request.
pub fn scrape(url: &str, timeout: Duration) -> Result<Exposition, ScrapeError> {
    let text = http_get_text(url, timeout).map_err(|source| ScrapeError::Http {
        url: url.to_owned(),
        source: Box::new(source),
    })?;
    parse(&text).map_err(|source| ScrapeError::Parse {
        url: url.to_owned(),
        source,
    })
}

/// A plain HTTP GET returning the body as text; no proxy (everything is on loopback), no
/// redirects, body capped.
pub(crate) fn http_get_text(url: &str, timeout: Duration) -> Result<String, HttpError> {
    http_client::get_text(url, timeout, MAX_BODY)
}

/// Parses exposition text.
pub fn parse(text: &str) -> Result<Exposition, ParseError> {
    let mut samples = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        samples.push(parse_sample(line).map_err(|reason| ParseError {
            line: i + 1,
            reason,
        })?);
    }
    Ok(Exposition { samples })
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Splits a leading identifier off `s` (`colon_ok` for metric names, not for label names).
fn take_name(s: &str, colon_ok: bool) -> Option<(&str, &str)> {
    let mut chars = s.char_indices();
    let (_, first) = chars.next()?;
    if !is_name_start(first) || (!colon_ok && first == ':') {
        return None;
    }
    let end = chars
        .find(|&(_, c)| !is_name_char(c) || (!colon_ok && c == ':'))
        .map_or(s.len(), |(i, _)| i);
    Some(s.split_at(end))
}

fn parse_sample(line: &str) -> Result<Sample, &'static str> {
    let (name, mut rest) = take_name(line, true).ok_or("expected a metric name")?;
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = after.trim_start();
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = take_name(rest, false).ok_or("expected a label name")?;
            let after = after.trim_start();
            let after = after
                .strip_prefix('=')
                .ok_or("expected '=' after label name")?;
            let after = after.trim_start();
            let after = after
                .strip_prefix('"')
                .ok_or("expected '\"' to open label value")?;
            let (value, after) = take_quoted(after)?;
            labels.push((key.to_owned(), value));
            rest = after.trim_start();
            if let Some(after) = rest.strip_prefix(',') {
                rest = after.trim_start();
            } else if !rest.starts_with('}') {
                return Err("expected ',' or '}' after label value");
            }
        }
    }
    let mut fields = rest.split_ascii_whitespace();
    if !rest.starts_with([' ', '\t']) {
        return Err("expected whitespace before the value");
    }
    let value = parse_value(fields.next().ok_or("missing value")?)?;
    if let Some(ts) = fields.next() {
        ts.parse::<i64>()
            .map_err(|_| "timestamp is not an integer")?;
    }
    if fields.next().is_some() {
        return Err("unexpected text after the timestamp");
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Reads a label value up to its closing quote, unescaping; returns it and the text after.
fn take_quoted(s: &str) -> Result<(String, &str), &'static str> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, 'n')) => out.push('\n'),
                Some(_) => return Err("unknown escape in label value"),
                None => return Err("unterminated label value"),
            },
            c => out.push(c),
        }
    }
    Err("unterminated label value")
}

fn parse_value(s: &str) -> Result<f64, &'static str> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => {
            // Rust's parser also takes "inf"/"nan" spellings the format does not; refuse them.
            if s.chars()
                .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
            {
                return Err("value is not a number");
            }
            s.parse::<f64>().map_err(|_| "value is not a number")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    const PAGE: &str = r#"# HELP sfu_packets_sent_total RTP packets sent to subscribers
# TYPE sfu_packets_sent_total counter
sfu_packets_sent_total{kind="audio",type="initial"} 1200
sfu_packets_sent_total{kind="video",type="initial"} 3.5e3
sfu_packets_sent_total{kind="video",type="retransmit"} 7
# TYPE sfu_forwarding_latency_seconds histogram
sfu_forwarding_latency_seconds_bucket{le="0.001"} 10
sfu_forwarding_latency_seconds_bucket{le="+Inf"} 12
sfu_forwarding_latency_seconds_sum 0.004
sfu_forwarding_latency_seconds_count 12
process_cpu_seconds_total 1.25 1700000000000
weird{path="a,b=\"c\"}\\d\ne", trailing="yes",} -Inf
up NaN
"#;

    #[test]
    fn parses_counters_histograms_and_escapes() {
        let e = parse(PAGE).unwrap();
        assert_eq!(e.samples.len(), 10);
        assert_eq!(e.sum("sfu_packets_sent_total", &[]), Some(4707.0));
        assert_eq!(
            e.sum("sfu_packets_sent_total", &[("type", "initial")]),
            Some(4700.0)
        );
        assert_eq!(
            e.sum(
                "sfu_packets_sent_total",
                &[("kind", "video"), ("type", "retransmit")]
            ),
            Some(7.0)
        );
        assert_eq!(
            e.sum("sfu_forwarding_latency_seconds_bucket", &[("le", "+Inf")]),
            Some(12.0)
        );
        assert_eq!(e.sum("process_cpu_seconds_total", &[]), Some(1.25));
        let weird = e.samples.iter().find(|s| s.name == "weird").unwrap();
        assert_eq!(weird.label("path"), Some("a,b=\"c\"}\\d\ne"));
        assert_eq!(weird.label("trailing"), Some("yes"));
        assert_eq!(weird.value, f64::NEG_INFINITY);
        assert!(e.sum("up", &[]).unwrap().is_nan());
    }

    #[test]
    fn missing_metric_is_none_not_zero() {
        let e = parse(PAGE).unwrap();
        assert_eq!(e.sum("sfu_nonexistent_total", &[]), None);
        assert_eq!(e.sum("sfu_packets_sent_total", &[("kind", "data")]), None);
    }

    #[test]
    fn malformed_lines_are_errors_with_line_numbers() {
        let cases = [
            "9metric 1",
            "metric",
            "metric{a=\"1\" 2",
            "metric{a=1} 2",
            "metric{a=\"1\"} two",
            "metric{a=\"\\x\"} 1",
            "metric{a=\"open} 1",
            "metric{=\"v\"} 1",
            "metric{a=\"1\"}2",
            "metric 1 notatime",
            "metric 1 2 3",
            "metric inf",
            "metric{a=\"1\"b=\"2\"} 1",
        ];
        for case in cases {
            let text = format!("# ok\nfine 1\n{case}\n");
            let err = parse(&text).unwrap_err();
            assert_eq!(err.line, 3, "{case}: {err}");
        }
    }

    #[test]
    fn every_prefix_of_a_page_parses_or_errs_without_panic() {
        for end in 0..=PAGE.len() {
            if PAGE.is_char_boundary(end) {
                let _ = parse(&PAGE[..end]);
            }
        }
    }

    #[test]
    fn scrapes_a_real_http_endpoint() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let _ = conn.read(&mut request).unwrap();
            let body = PAGE.as_bytes();
            write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .unwrap();
            conn.write_all(body).unwrap();
        });
        let e = scrape(&format!("http://{addr}/metrics"), Duration::from_secs(5)).unwrap();
        server.join().unwrap();
        assert_eq!(e.sum("sfu_packets_sent_total", &[]), Some(4707.0));
    }

    #[test]
    fn unreachable_endpoint_is_an_error() {
        // Bind then drop to get a port nobody listens on.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = scrape(
            &format!("http://127.0.0.1:{port}/metrics"),
            Duration::from_secs(2),
        );
        assert!(matches!(err, Err(ScrapeError::Http { .. })));
    }
}
