//! The ICE-TCP accept loop: applies the allow-list and the connection caps, starts one task per
//! connection and tells the shard when each one opened and why it ended. It owns the counts the
//! caps are checked against, so nothing else needs to share them.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::{Id, JoinSet};
use tracing::{debug, info};

use super::{ConnectionId, IceTcpClose, IceTcpConfig, TcpInput, connection, link_pair};
use crate::transport::allow_list::SourceAllowList;

/// Pause after a failed `accept` (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Starts the accept loop on the current runtime. It ends, closing every connection, when the
/// shard drops its receiver.
pub(crate) fn spawn_listener(
    listener: TcpListener,
    config: IceTcpConfig,
    allowed: SourceAllowList,
    to_shard: mpsc::Sender<TcpInput>,
) {
    tokio::spawn(accept_loop(listener, config, allowed, to_shard));
}

async fn accept_loop(
    listener: TcpListener,
    config: IceTcpConfig,
    allowed: SourceAllowList,
    to_shard: mpsc::Sender<TcpInput>,
) {
    let mut tasks: JoinSet<IceTcpClose> = JoinSet::new();
    let mut remotes: HashMap<Id, (SocketAddr, ConnectionId)> = HashMap::new();
    let mut next_connection = 0u64;
    let mut per_ip: HashMap<IpAddr, usize> = HashMap::new();
    loop {
        let input = tokio::select! {
            () = to_shard.closed() => break,
            Some(done) = tasks.join_next_with_id() => {
                let (id, reason) = match done {
                    Ok((id, reason)) => (id, reason),
                    // A task that panicked (a bug) still frees its place and is counted.
                    Err(err) => (err.id(), IceTcpClose::Shutdown),
                };
                // Every task's id was filed when it was spawned.
                let Some((remote, connection)) = remotes.remove(&id) else { continue };
                release(&mut per_ip, remote.ip());
                debug!(%remote, reason = reason.label(), "ICE-TCP connection closed");
                TcpInput::Closed { remote, connection, reason }
            }
            accepted = listener.accept() => {
                let (stream, remote) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        debug!(%err, "ICE-TCP accept failed");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                        continue;
                    }
                };
                let connection = ConnectionId(next_connection);
                next_connection += 1;
                let from_ip = per_ip.get(&remote.ip()).copied().unwrap_or(0);
                let refusal = if !allowed.allows(remote.ip()) {
                    Some(IceTcpClose::SourceNotAllowed)
                } else if tasks.len() >= config.max_connections {
                    Some(IceTcpClose::GlobalLimit)
                } else if from_ip >= config.max_connections_per_ip {
                    Some(IceTcpClose::PerIpLimit)
                } else {
                    None
                };
                if let Some(reason) = refusal {
                    drop(stream);
                    TcpInput::Closed { remote, connection, reason }
                } else {
                    // Small frames (STUN, RTCP) must not wait for Nagle's timer.
                    let _ = stream.set_nodelay(true);
                    per_ip.insert(remote.ip(), from_ip + 1);
                    let (link, ends) = link_pair(connection);
                    // The shard hears of the link before the task can send it a frame.
                    if to_shard.send(TcpInput::Opened { remote, link }).await.is_err() {
                        break;
                    }
                    let task_shard = to_shard.clone();
                    let stun_timeout = config.stun_timeout;
                    let handle = tasks.spawn(async move {
                        connection::serve(stream, remote, connection, ends, task_shard, stun_timeout)
                            .await
                    });
                    remotes.insert(handle.id(), (remote, connection));
                    continue;
                }
            }
        };
        if to_shard.send(input).await.is_err() {
            break;
        }
    }
    info!(open = tasks.len(), "ICE-TCP listener stopped");
    tasks.shutdown().await;
}

fn release(per_ip: &mut HashMap<IpAddr, usize>, ip: IpAddr) {
    if let Some(count) = per_ip.get_mut(&ip) {
        *count -= 1;
        if *count == 0 {
            per_ip.remove(&ip);
        }
    }
}
