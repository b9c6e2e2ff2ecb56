//! What every HTTP handler shares: the rooms, the session context, the admin token and the
//! per-IP connection limiter. Built once by [`crate::server::start`], cloned into each request.

use std::net::IpAddr;
use std::sync::Arc;

use governor::DefaultKeyedRateLimiter;

use crate::auth::Secret;
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
}
