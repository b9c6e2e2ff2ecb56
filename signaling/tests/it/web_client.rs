//! The service serves the web client at `/` with the types browsers require for module scripts,
//! and never serves tests, tools or `node_modules`.

use crate::common;

use common::{TestServer, config};

#[tokio::test]
async fn web_client_is_served_with_module_types_and_nothing_else() {
    let t = TestServer::start(config()).await;
    let get = |path: &str| t.http.get(t.url(path)).send();

    let index = get("/").await.expect("GET /");
    assert_eq!(index.status(), 200);
    assert!(
        index.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = index.text().await.expect("body");
    assert!(html.contains("app.js"), "index.html loads the app module");

    for module in ["/app.js", "/e2ee-worker.js", "/e2ee/index.mjs"] {
        let r = get(module).await.expect("GET module");
        assert_eq!(r.status(), 200, "{module}");
        assert_eq!(
            r.headers()["content-type"],
            "text/javascript; charset=utf-8",
            "{module}"
        );
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    }

    for hidden in [
        "/package.json",
        "/node_modules/playwright-core/package.json",
        "/test/harness.mjs",
        "/e2ee/test/rfc9605.test.mjs",
        "/e2ee/tools/cross-fixtures.mjs",
        "/no-such-file.js",
        "/../Cargo.toml",
    ] {
        let r = get(hidden).await.expect("GET hidden");
        assert_eq!(r.status(), 404, "{hidden} must not be served");
    }
    t.server.shutdown().await;
}
