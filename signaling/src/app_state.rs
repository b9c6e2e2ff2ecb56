//! What every HTTP handler shares: the rooms, the session context, the admin token, the
//! per-IP connection limiter and whether the server drains. Built once by [`crate::server::start`], cloned into each request.

use std::net::IpAddr;
use std::sync::Arc;

use governor::DefaultKeyedRateLimiter;
use tokio::sync::watch;

use crate::auth::Secret;
use crate::cluster::Cluster;
use crate::hub::Hub;
use crate::session::SessionContext;

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// Rooms.
    pub hub: Hub,
    /// What each WebSocket session gets.
    pub session: SessionContext,
    /// Admin bearer token.
    pub admin_token: Option<Secret>,
    /// Per-IP connection limiter.
    pub ip_limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// True while the server drains (`/readyz` answers 503).
    pub draining: watch::Receiver<bool>,
    /// This replica's cluster (`None`: a single replica).
    pub cluster: Option<Cluster>,
}
