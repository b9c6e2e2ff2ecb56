//! The list of source networks a shard answers.

use std::net::IpAddr;

use ipnet::IpNet;

/// Source networks whose datagrams the shard reads. Checked before anything else, so a source
/// outside the list costs one lookup and gets no answer.
#[derive(Debug, Clone, Default)]
pub struct SourceAllowList {
    networks: Vec<IpNet>,
}

impl SourceAllowList {
    /// A list answering exactly `networks`. An empty list answers nobody.
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self { networks }
    }

    /// A list answering every source (production nodes on the public internet).
    pub fn any() -> Self {
        Self::new(vec![
            IpNet::V4(ipnet::Ipv4Net::default()),
            IpNet::V6(ipnet::Ipv6Net::default()),
        ])
    }

    /// Whether datagrams from `ip` are read. IPv4-mapped IPv6 sources are checked as IPv4.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.networks.iter().any(|net| net.contains(&ip))
    }

    /// The networks in the list.
    pub fn networks(&self) -> &[IpNet] {
        &self.networks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_list_allows_only_loopback() {
        let list = SourceAllowList::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(list.allows("127.0.0.1".parse().unwrap()));
        assert!(list.allows("127.9.9.9".parse().unwrap()));
        assert!(list.allows("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!list.allows("10.0.0.1".parse().unwrap()));
        assert!(!list.allows("::1".parse().unwrap()));
        assert!(!SourceAllowList::default().allows("127.0.0.1".parse().unwrap()));
        assert!(SourceAllowList::any().allows("192.0.2.1".parse().unwrap()));
    }
}
