//! Datagrams the kernel dropped before the shard read them (the socket's receive buffer was
//! full): the `drops` column of `/proc/net/udp` and `/proc/net/udp6` for the shard's socket,
//! found by the socket's inode. Read at each metrics scrape; `None` where `/proc` does not
//! have it (not Linux, or the socket is gone).

use std::os::fd::{AsRawFd, RawFd};

/// The inode of the socket behind `fd` (`/proc/self/fd/<fd>` links to `socket:[<inode>]`).
pub(crate) fn socket_inode(socket: &impl AsRawFd) -> Option<u64> {
    inode_of_fd(socket.as_raw_fd())
}

fn inode_of_fd(fd: RawFd) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
    let link = link.to_str()?;
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The kernel's count of datagrams dropped on the UDP socket with `inode`.
pub(crate) fn receive_drops(inode: u64) -> Option<u64> {
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .find_map(|table| {
            let text = std::fs::read_to_string(table).ok()?;
            drops_in_table(&text, inode)
        })
}

/// The `drops` column (the last) of the row whose `inode` column (the tenth) is `inode`.
fn drops_in_table(table: &str, inode: u64) -> Option<u64> {
    table.lines().skip(1).find_map(|row| {
        let columns: Vec<&str> = row.split_whitespace().collect();
        if columns.get(9)?.parse::<u64>().ok()? != inode {
            return None;
        }
        columns.last()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_drops_of_the_row_with_the_inode() {
        let table = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
            1: 0100007F:1EDA 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 4242 2 0000000000000000 0\n\
            2: 0100007F:1EDB 00000000:0000 07 00000000:00034000 00:00000000 00000000  1000        0 4343 2 0000000000000000 1234\n";
        assert_eq!(drops_in_table(table, 4343), Some(1234));
        assert_eq!(drops_in_table(table, 4242), Some(0));
        assert_eq!(drops_in_table(table, 1), None);
    }

    #[test]
    fn a_bound_socket_is_found_with_no_drops() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind loopback");
        let inode = socket_inode(&socket).expect("socket inode");
        assert_eq!(receive_drops(inode), Some(0));
    }
}
