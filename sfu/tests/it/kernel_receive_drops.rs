//! Datagrams the kernel drops before the SFU reads them are exported: a node whose media
//! socket has a tiny receive buffer (`receive_buffer_bytes`, `SFU_UDP_RECEIVE_BUFFER_BYTES`)
//! gets a burst it cannot keep up with, and `sfu_udp_receive_buffer_drops_total` reads exactly
//! what the kernel reports for that socket in `/proc/net/udp`.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use crate::common::poll_until;
use crate::common::sfu_process::metric;
use sfu::node::{NodeConfig, Observer, start_node};
use sfu::ops::SfuMetrics;
use sfu::transport::TransportConfig;

/// The `drops` column of the `/proc/net/udp` row bound to 127.0.0.1:`port`.
fn proc_drops(port: u16) -> Option<u64> {
    let local = format!("0100007F:{port:04X}");
    let table = std::fs::read_to_string("/proc/net/udp").ok()?;
    table.lines().skip(1).find_map(|row| {
        let columns: Vec<&str> = row.split_whitespace().collect();
        (columns.get(1) == Some(&local.as_str()))
            .then(|| columns.last()?.parse().ok())
            .flatten()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_receive_drops_exported() {
    common::init_tracing();
    let metrics = Arc::new(SfuMetrics::new().expect("registry builds"));
    let node = start_node(
        NodeConfig {
            transport: TransportConfig {
                // The kernel's minimum: a few datagrams fit.
                receive_buffer_bytes: Some(1),
                ..TransportConfig::loopback()
            },
            forwarding: Default::default(),
        },
        Some(metrics.clone() as Arc<dyn Observer>),
    )
    .await
    .expect("node starts");
    let target = node.udp_addr();
    assert_eq!(
        proc_drops(target.port()),
        Some(0),
        "no drops before the burst"
    );

    // A bounded burst of full-size datagrams, as fast as one thread sends them.
    tokio::task::spawn_blocking(move || {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind loopback");
        let datagram = [0xffu8; 1200];
        for _ in 0..20_000 {
            socket.send_to(&datagram, target).expect("datagram sent");
        }
    })
    .await
    .expect("burst sent");

    let kernel = proc_drops(target.port()).expect("socket in /proc/net/udp");
    assert!(kernel > 0, "the tiny buffer overflowed");
    let mut exported = 0;
    poll_until(
        Duration::from_secs(5),
        "the kernel's drops exported",
        async || {
            metrics.update(&node.snapshot().await);
            exported = metric(&metrics.render(), "sfu_udp_receive_buffer_drops_total")
                .unwrap_or(0.0) as u64;
            exported == kernel
        },
    )
    .await;
    // Nothing more arrives, so the kernel's number stands still and the metric with it.
    assert_eq!(proc_drops(target.port()), Some(exported));
}
