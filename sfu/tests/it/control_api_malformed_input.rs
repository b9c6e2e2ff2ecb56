//! The `sfu` binary's control API (with debug logging) answers bad input with JSON errors that
//! carry a stable code, and neither the answers nor the log lines grow with the input:
//! malformed JSON, wrong types, a missing content type, a 1 MB room name (over the body limit),
//! a 200 kB one (under it), a long name in the path, unknown routes and methods. The refusals
//! are counted by code.

use std::time::Duration;

use crate::common::sfu_process::{SECRET, SfuProcess, metric, scrape};
use sfu::control::ErrorBody;

/// Longest log line accepted: a refusal must not copy the request into the log.
const MAX_LOG_LINE: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_api_malformed_input_gets_json_errors() {
    let node = SfuProcess::start(&[("RUST_LOG", "debug")]).await;
    let base = node.base();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client builds");
    let huge = "x".repeat(1024 * 1024);
    let large = "y".repeat(200 * 1024);
    let long_path = "z".repeat(1000);
    let json = "application/json";

    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "malformed JSON",
            http.post(format!("{base}/control/rooms"))
                .header("content-type", json)
                .body(r#"{"room": "r1", "kind": "#),
            400,
            "malformed_json",
        ),
        (
            "wrong type",
            http.post(format!("{base}/control/rooms"))
                .header("content-type", json)
                .body(r#"{"room": 17, "kind": "meeting"}"#),
            400,
            "invalid_body",
        ),
        (
            "unknown variant (echoing a long value)",
            http.post(format!("{base}/control/rooms"))
                .header("content-type", json)
                .body(format!(r#"{{"room": "r1", "kind": "{large}"}}"#)),
            400,
            "invalid_body",
        ),
        (
            "no content type",
            http.post(format!("{base}/control/rooms"))
                .body(r#"{"room": "r1", "kind": "meeting"}"#),
            415,
            "unsupported_media_type",
        ),
        (
            "1 MB room name",
            http.post(format!("{base}/control/rooms"))
                .json(&serde_json::json!({"room": huge, "kind": "meeting"})),
            413,
            "body_too_large",
        ),
        (
            "200 kB room name",
            http.post(format!("{base}/control/rooms"))
                .json(&serde_json::json!({"room": large, "kind": "meeting"})),
            400,
            "invalid_name",
        ),
        (
            "long room name in the path",
            http.delete(format!("{base}/control/rooms/{long_path}")),
            400,
            "invalid_name",
        ),
        (
            "wrong type for subscriptions",
            http.put(format!(
                "{base}/control/rooms/r1/participants/d1/subscriptions"
            ))
            .header("content-type", json)
            .body(r#"{"track": "t1"}"#),
            400,
            "invalid_body",
        ),
        (
            "unknown room",
            http.delete(format!("{base}/control/rooms/nowhere")),
            404,
            "unknown_room",
        ),
        (
            "unknown route",
            http.get(format!("{base}/control/nothing-here")),
            404,
            "not_found",
        ),
        (
            "wrong method",
            http.get(format!("{base}/control/rooms")),
            405,
            "method_not_allowed",
        ),
    ];
    for (what, request, status, code) in cases {
        let response = request.bearer_auth(SECRET).send().await.expect(what);
        assert_eq!(response.status().as_u16(), status, "{what}");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("application/json"),
            "{what}: {content_type}"
        );
        let text = response.text().await.expect("body");
        assert!(
            text.len() < 400,
            "{what}: a short answer, got {} bytes",
            text.len()
        );
        let body: ErrorBody = serde_json::from_str(&text).expect("an ErrorBody");
        assert_eq!(body.code, code, "{what}: {text}");
        assert!(!body.error.is_empty(), "{what}: a reason");
    }
    // Without the secret: a JSON 401 too.
    let response = http
        .get(format!("{base}/control/status"))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 401);
    let body: ErrorBody = response.json().await.expect("JSON 401");
    assert_eq!(body.code, "unauthorized");

    // Counted by code.
    let metrics = scrape(&http, &base).await;
    for code in [
        "malformed_json",
        "invalid_body",
        "invalid_name",
        "body_too_large",
    ] {
        let sample = format!(r#"sfu_control_requests_rejected_total{{code="{code}"}}"#);
        assert!(
            metric(&metrics, &sample).unwrap_or(0.0) >= 1.0,
            "{sample} counted"
        );
    }

    // The node logged at debug level throughout, and no line carries the long input.
    let lines = node.lines();
    assert!(!lines.is_empty(), "the node logs at debug level");
    for line in &lines {
        assert!(
            line.len() < MAX_LOG_LINE,
            "a {}-byte log line: {}…",
            line.len(),
            line.chars().take(200).collect::<String>()
        );
        assert!(!line.contains("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"));
        assert!(!line.contains("yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"));
        assert!(!line.contains("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"));
    }
}
