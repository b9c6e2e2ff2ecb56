//! The loadtest's one HTTP client: reqwest's blocking client (every caller is synchronous code
//! outside the participants' runtime), with no proxy (the services are on loopback, or at
//! `--url`), no redirects, and one deadline for each whole exchange, body included.

use std::io::Read as _;
use std::time::Duration;

use thiserror::Error;

/// Why an HTTP exchange failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HttpError {
    /// Connecting, sending or receiving failed, the deadline passed, or (where a 2xx status is
    /// required) the status was another one.
    #[error("{}", with_causes(.0))]
    Request(#[source] reqwest::Error),
    /// The body is larger than the caller accepts.
    #[error("body larger than {limit} bytes")]
    BodyTooLarge {
        /// The most bytes accepted.
        limit: u64,
    },
    /// The body could not be read, or is not UTF-8.
    #[error("reading the body: {0}")]
    Body(#[source] std::io::Error),
}

impl From<reqwest::Error> for HttpError {
    fn from(e: reqwest::Error) -> Self {
        HttpError::Request(e)
    }
}

/// reqwest's message and the causes under it ("error sending request" alone does not say
/// that the connection was refused).
fn with_causes(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// A client whose requests each have `timeout` from connecting to the end of the body.
pub(crate) fn client(timeout: Duration) -> Result<reqwest::blocking::Client, HttpError> {
    Ok(reqwest::blocking::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()?)
}

/// The body of `response` as text, refused when longer than `limit` bytes.
pub(crate) fn read_text(
    response: reqwest::blocking::Response,
    limit: u64,
) -> Result<String, HttpError> {
    let mut body = Vec::new();
    response
        .take(limit.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(HttpError::Body)?;
    if body.len() as u64 > limit {
        return Err(HttpError::BodyTooLarge { limit });
    }
    String::from_utf8(body)
        .map_err(|e| HttpError::Body(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// A GET of `url` that must answer 2xx; returns the body as text (at most `limit` bytes).
pub(crate) fn get_text(url: &str, timeout: Duration, limit: u64) -> Result<String, HttpError> {
    let response = client(timeout)?.get(url).send()?.error_for_status()?;
    read_text(response, limit)
}
