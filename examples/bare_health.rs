//! The request-overhead yardstick of `scripts/load-bench.py`: a bare axum handler that answers
//! the same health JSON as FocusFlow's `/api/health`, with no layer at all, on the same runtime
//! settings. `cargo build --release --example bare_health`, then
//! `target/release/examples/bare_health <port>`.

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|port| port.parse().ok())
        .unwrap_or(3999);
    let app = Router::new().route(
        "/api/health",
        get(|| async {
            axum::Json(serde_json::json!({
                "status": "ok",
                "timestamp": focusflow::jobs::iso_millis(focusflow::jobs::now_millis()),
                "env": { "assemblyai": false, "transcriber": "none", "openai": false, "dataDir": "data" }
            }))
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the port is free");
    axum::serve(listener, app).await.expect("the server runs");
}
