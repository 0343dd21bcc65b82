//! Which `Host` headers a node answers, and which reverse proxies it believes.

/// Which `Host` headers a node answers (421 otherwise, but for the probes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AllowedHosts {
    /// A wildcard bind (`0.0.0.0`, `::`) with no list: whatever name reaches the node.
    #[default]
    Any,
    /// These host names, lower case, with any port.
    Only(Vec<String>),
}

impl AllowedHosts {
    /// From `http.allowed_hosts` or, when it is empty, the bind address: a loopback bind
    /// answers `localhost`, `127.0.0.1` and `[::1]`; a wildcard bind any host; another
    /// address that address.
    pub(super) fn from_settings(listed: &[String], bind: &str) -> Self {
        let names: Vec<String> =
            listed.iter().map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect();
        if !names.is_empty() {
            return AllowedHosts::Only(names);
        }
        match bind.trim().parse::<std::net::IpAddr>() {
            Ok(ip) if ip.is_unspecified() => AllowedHosts::Any,
            Ok(ip) if ip.is_loopback() => {
                AllowedHosts::Only(vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()])
            }
            Ok(std::net::IpAddr::V6(ip)) => AllowedHosts::Only(vec![format!("[{ip}]")]),
            Ok(ip) => AllowedHosts::Only(vec![ip.to_string()]),
            Err(_) if bind.trim().eq_ignore_ascii_case("localhost") => {
                AllowedHosts::Only(vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()])
            }
            Err(_) => AllowedHosts::Only(vec![bind.trim().to_ascii_lowercase()]),
        }
    }

    /// Whether a `Host` header (`name[:port]`) is one this node answers.
    pub fn allow(&self, host: &str) -> bool {
        match self {
            AllowedHosts::Any => true,
            AllowedHosts::Only(names) => {
                let host = host.trim();
                let name = match host.rsplit_once(':') {
                    // `[::1]:8080`, `localhost:8080`; a bare `[::1]` has its colons inside brackets.
                    Some((name, port)) if !port.contains(']') && port.bytes().all(|b| b.is_ascii_digit()) => name,
                    _ => host,
                };
                names.iter().any(|allowed| allowed.eq_ignore_ascii_case(name))
            }
        }
    }
}

/// `http.trusted_proxies`: addresses (one host each) or CIDR ranges.
pub(super) fn parse_proxies(listed: &[String]) -> Result<Vec<ipnet::IpNet>, String> {
    listed
        .iter()
        .map(|entry| entry.trim())
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("`{entry}` is neither an address nor a CIDR range"))
        })
        .collect()
}
