//! A raw ICE-TCP client for the ICE-TCP tests: RFC 4571 frames over a plain `TcpStream`.

use std::time::Duration;

use sfu::transport::{IceTcpConfig, TransportConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The loopback configuration with ICE-TCP on a free port.
pub(crate) fn ice_tcp_config() -> TransportConfig {
    let mut config = TransportConfig::loopback();
    config.ice_tcp = Some(IceTcpConfig::on_port(0));
    config
}

/// Writes `packet` as one frame (2-byte big-endian length, then the bytes).
pub(crate) async fn write_frame(stream: &mut TcpStream, packet: &[u8]) {
    let len = u16::try_from(packet.len()).expect("test frames fit a u16 length");
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(packet);
    stream.write_all(&framed).await.expect("frame written");
}

/// Reads one frame, or `None` if the SFU closed the connection first; panics after `limit`.
pub(crate) async fn read_frame(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    tokio::time::timeout(limit, async {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await.ok()?;
        let mut packet = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut packet).await.ok()?;
        Some(packet)
    })
    .await
    .expect("a frame or the end of the connection in time")
}

/// Waits up to `limit` for the SFU to end the connection (EOF or reset), reading past what it
/// sent before; panics if the connection stays open. Returns how many bytes came first.
pub(crate) async fn closed_by_sfu(stream: &mut TcpStream, limit: Duration) -> usize {
    let mut buf = [0u8; 2048];
    let mut before = 0;
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => before += n,
            }
        }
    })
    .await
    .expect("the SFU closes the connection in time");
    before
}
