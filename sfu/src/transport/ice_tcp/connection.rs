//! One ICE-TCP connection's task: reads frames and hands them to the shard, writes the frames the
//! shard queues, and ends the connection on garbage, an oversized frame, a missing binding
//! request, the client's close or the shard's word. It returns why it ended.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

use super::framing::{self, MAX_FRAME};
use super::{ConnectionEnds, ConnectionId, IceTcpClose, TcpInput, ToConnection};
use crate::transport::protocol_byte::is_webrtc_protocol;
use crate::transport::stun_gate::looks_like_stun;

/// Bytes asked of the socket per read (a few frames).
const READ_CHUNK: usize = 4 * MAX_FRAME;

/// Frames joined into one write.
const WRITE_BATCH: usize = 64;

/// Serves connection `connection` from `remote` until it ends; returns why.
pub(super) async fn serve(
    stream: TcpStream,
    remote: SocketAddr,
    connection: ConnectionId,
    ends: ConnectionEnds,
    to_shard: mpsc::Sender<TcpInput>,
    stun_timeout: Duration,
) -> IceTcpClose {
    let (reader, writer) = stream.into_split();
    let ConnectionEnds {
        outgoing,
        force_close,
        authenticated,
    } = ends;
    tokio::select! {
        biased;
        reason = forced(force_close) => reason,
        reason = stun_deadline(authenticated, stun_timeout) => reason,
        reason = write_frames(writer, outgoing) => reason,
        reason = read_frames(reader, remote, connection, &to_shard) => reason,
    }
}

/// The shard's order to close at once. Its sender dropped without a word means the shard let go
/// of the link (a graceful close is on the write queue, or the shard stopped, which the queue
/// reports too): that decides nothing here.
async fn forced(force_close: oneshot::Receiver<IceTcpClose>) -> IceTcpClose {
    match force_close.await {
        Ok(reason) => reason,
        Err(_) => std::future::pending().await,
    }
}

/// `StunTimeout` unless the shard reports an authenticated binding request in time.
async fn stun_deadline(authenticated: oneshot::Receiver<()>, limit: Duration) -> IceTcpClose {
    match tokio::time::timeout(limit, authenticated).await {
        Err(_elapsed) => IceTcpClose::StunTimeout,
        // Authenticated; or the shard let go of the link, which the write queue reports.
        Ok(_) => std::future::pending().await,
    }
}

async fn read_frames(
    mut reader: OwnedReadHalf,
    remote: SocketAddr,
    connection: ConnectionId,
    to_shard: &mpsc::Sender<TcpInput>,
) -> IceTcpClose {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut first = true;
    loop {
        loop {
            let packet = match framing::take_frame(&mut buf) {
                Err(_) => return IceTcpClose::OversizedFrame,
                Ok(None) => break,
                Ok(Some(packet)) => packet,
            };
            // RFC 6544 §3: an ICE-TCP connection starts with a binding request.
            if !is_webrtc_protocol(&packet) || (first && !looks_like_stun(&packet)) {
                return IceTcpClose::Garbage;
            }
            first = false;
            let input = TcpInput::Frame {
                remote,
                connection,
                packet,
                read_at: Instant::now(),
            };
            // Waiting here is TCP's back-pressure: the client's sending slows to the shard's pace.
            if to_shard.send(input).await.is_err() {
                return IceTcpClose::Shutdown;
            }
        }
        // What is left in `buf` is at most one partial frame (under MAX_FRAME + 2 bytes), so
        // the buffer stays within a few frames.
        buf.reserve(READ_CHUNK);
        match reader.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return IceTcpClose::RemoteClosed,
            Ok(_) => {}
        }
    }
}

async fn write_frames(
    mut writer: OwnedWriteHalf,
    mut outgoing: mpsc::Receiver<ToConnection>,
) -> IceTcpClose {
    let mut out = BytesMut::new();
    loop {
        let Some(mut next) = outgoing.recv().await else {
            return IceTcpClose::Shutdown;
        };
        let mut close = None;
        let mut taken = 0;
        loop {
            match next {
                ToConnection::Packet(packet) => {
                    if framing::put_frame(&mut out, &packet).is_err() {
                        return IceTcpClose::OversizedFrame;
                    }
                }
                ToConnection::Close(reason) => {
                    close = Some(reason);
                    break;
                }
            }
            taken += 1;
            if taken == WRITE_BATCH {
                break;
            }
            match outgoing.try_recv() {
                Ok(more) => next = more,
                Err(_) => break,
            }
        }
        if writer.write_all(&out).await.is_err() {
            return IceTcpClose::RemoteClosed;
        }
        out.clear();
        if let Some(reason) = close {
            let _ = writer.shutdown().await;
            return reason;
        }
    }
}
