//! The owner's side of a connection proxied from another replica: the ordinary session
//! ([`run_session`]) over the bus, its frames coming in from the bus task and going out as
//! `down` envelopes to the client's replica.

use std::convert::Infallible;

use axum::extract::ws::Message;
use futures_util::{StreamExt as _, stream};
use tokio::sync::mpsc;
use tracing::debug;

use super::ServedContext;
use super::bus::{Bus, BusCommand};
use super::envelope::{Body, Direction, Envelope};
use crate::session::run_session;

/// Frames of one served session waiting to be published.
const OUT_QUEUE: usize = 256;

/// Runs the session of connection `conn` of replica `from` for `room`, if this replica owns
/// the room (else the client's replica is told [`Body::NotOwner`]).
pub(super) async fn run(
    ctx: ServedContext,
    bus: Bus,
    from: String,
    conn: u64,
    room: String,
    peer: Option<String>,
    frames: mpsc::Receiver<Message>,
) {
    let route = super::route_room(
        &ctx.store,
        &ctx.records,
        &ctx.metrics,
        &room,
        &ctx.session.hub,
    )
    .await;
    let owned = route == super::Route::Local;
    let down = |body| Envelope {
        from: ctx.store.replica().to_owned(),
        conn,
        dir: Direction::Down,
        body,
    };
    if !owned {
        debug!(room = %room, from = %from, "a connection for a room this replica does not own");
        let _ = ctx.store.send(&from, &down(Body::NotOwner)).await;
        bus.command(BusCommand::Unserve(from, conn)).await;
        return;
    }
    // The session writes into a channel; one task publishes its frames, in order. When a
    // publish fails the task ends, the channel closes, and the session's next write fails
    // (a connection lost).
    let (out, mut outgoing) = futures_channel::mpsc::channel::<Message>(OUT_QUEUE);
    let publisher = {
        let ctx = ctx.clone();
        let from = from.clone();
        tokio::spawn(async move {
            while let Some(message) = outgoing.next().await {
                let envelope = Envelope {
                    from: ctx.store.replica().to_owned(),
                    conn,
                    dir: Direction::Down,
                    body: Body::from_message(&message),
                };
                match ctx.store.send(&from, &envelope).await {
                    Ok(0) => {
                        debug!(%from, "nobody reads the client's replica's inbox; the connection is lost");
                        return;
                    }
                    Ok(_) => ctx.metrics.bus_messages.with_label_values(&["sent"]).inc(),
                    Err(_) => {
                        ctx.metrics.redis_error("send");
                        return;
                    }
                }
            }
        })
    };
    let frames = stream::unfold(frames, |mut rx| async move {
        rx.recv().await.map(|m| (Ok::<_, Infallible>(m), rx))
    });
    let peer = peer.and_then(|p| p.parse().ok());
    run_session(out, Box::pin(frames), ctx.session.clone(), peer).await;
    // Frames the session wrote go before the end.
    let _ = publisher.await;
    // The session is over: the client's replica ends the client's connection (a close frame
    // the session sent went before).
    let _ = ctx.store.send(&from, &down(Body::End)).await;
    bus.command(BusCommand::Unserve(from, conn)).await;
}
