//! The admin API refuses request fields it does not know (the document says
//! `additionalProperties: false`): a typo such as `max_caller` is a 400 `unknown_field` naming
//! the field, creates nothing and is counted; the same body spelt right is accepted. Requests go
//! over real HTTP to the running service and every body is checked against `openapi.json`.

use crate::admin_api::{check, schema_errors};
use crate::common;

use common::{ADMIN, TestServer, config};
use serde_json::{Value, json};

#[tokio::test]
async fn admin_api_refuses_unknown_fields() {
    let s = TestServer::start(config()).await;
    let cases = [
        (
            json!({"name": "typo", "kind": "meeting", "max_caller": 2}),
            "max_caller",
        ),
        (
            json!({"name": "typo", "kind": "broadcast", "max_viewer": 5}),
            "max_viewer",
        ),
        (
            json!({"name": "typo", "kind": "meeting", "E2EE": true}),
            "E2EE",
        ),
        (
            json!({"name": "typo", "kind": "meeting", "recording":
                {"v": 1, "document": "e30", "admin_key": "AA", "sig": "AA", "note": "x"}}),
            "note",
        ),
    ];
    for (body, field) in &cases {
        assert!(
            !schema_errors("CreateRoomRequest", body).is_empty(),
            "openapi.json refuses {body} too"
        );
        let r = s
            .http
            .post(s.url("/v1/rooms"))
            .bearer_auth(ADMIN)
            .json(body)
            .send()
            .await
            .expect("create");
        assert_eq!(r.status(), 400, "{body}");
        let error: Value = r.json().await.expect("json error");
        check("Error", &error);
        assert_eq!(error["code"], "unknown_field", "{error}");
        assert_eq!(error["field"], *field, "{error}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(field),
            "the message names {field}: {message}"
        );

        let r = s
            .http
            .get(s.url("/v1/rooms/typo"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 404, "nothing was created by {body}");
    }
    assert_eq!(
        s.metric("signaling_rejected_total{reason=\"unknown_field\"}")
            .await,
        cases.len() as f64
    );

    // Spelt right, the same request is accepted with the capacity asked for.
    let body = json!({"name": "typo", "kind": "meeting", "max_callers": 2});
    assert_eq!(
        schema_errors("CreateRoomRequest", &body),
        Vec::<String>::new()
    );
    let created = s.create_room(body).await;
    check("RoomDetail", &created);
    assert_eq!(created["policy"]["max_callers"], 2);
}
