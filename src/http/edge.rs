//! What the edge decides about a request before any handler sees it, as plain functions over
//! its headers and the connection: which host it is for, which origin it comes from, what its
//! body claims to be, and which client sent it (behind trusted proxies).

use std::net::IpAddr;

use actix_web::http::header::{self, HeaderMap};

use crate::settings::AllowedHosts;

/// Paths every `Host` may reach: probes address a pod by its IP.
pub fn is_probe(path: &str) -> bool {
    path.starts_with("/health/") || path == "/metrics"
}

/// The request's `Host` if this node does not answer for it.
pub fn misdirected<'a>(hosts: &AllowedHosts, host: Option<&'a str>) -> Option<&'a str> {
    match host {
        Some(host) if hosts.allow(host) => None,
        Some(host) => Some(host),
        // HTTP/1.0 without a Host: only a wildcard bind answers it.
        None if matches!(hosts, AllowedHosts::Any) => None,
        None => Some(""),
    }
}

/// Whether a request with `Origin: origin` may be served: the server's own origin (the
/// request's scheme and `Host`), or one `http.allowed_origins` lists (`*`: any).
pub fn origin_allowed(origin: &str, scheme: &str, host: Option<&str>, allowed_origins: &[String]) -> bool {
    let origin = origin.trim();
    let own = host.is_some_and(|host| same_origin(origin, &format!("{scheme}://{host}")));
    own || allowed_origins.iter().any(|allowed| allowed.trim() == "*" || same_origin(origin, allowed.trim()))
}

/// Origins compare without regard to case (scheme and host are case-insensitive).
fn same_origin(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// A request that carries a body (declared by length or sent in chunks).
pub fn has_body(headers: &HeaderMap) -> bool {
    let length =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    length.is_some_and(|n| n > 0) || headers.contains_key(header::TRANSFER_ENCODING)
}

/// `Content-Type: application/json`, with or without parameters (`; charset=utf-8`).
pub fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    value.split(';').next().is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// The client's address: the peer's, or, when the peer is a trusted proxy, the last address in
/// `X-Forwarded-For` that is not one (each proxy appends the address it received from).
pub fn client_address(peer: Option<IpAddr>, headers: &HeaderMap, proxies: &[ipnet::IpNet]) -> Option<IpAddr> {
    let peer = peer?;
    if !is_trusted(peer, proxies) {
        return Some(peer);
    }
    let forwarded = headers.get_all("x-forwarded-for").filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
    let hops: Vec<IpAddr> = forwarded.filter_map(|hop| hop.trim().parse().ok()).collect();
    Some(hops.into_iter().rev().find(|hop| !is_trusted(*hop, proxies)).unwrap_or(peer))
}

/// The scheme the client used: the connection's, or a trusted proxy's `X-Forwarded-Proto`.
pub fn client_scheme<'a>(
    peer: Option<IpAddr>,
    headers: &'a HeaderMap,
    proxies: &[ipnet::IpNet],
    own: &'a str,
) -> &'a str {
    let forwarded = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).map(str::trim);
    match forwarded {
        Some(proto @ ("http" | "https")) if peer.is_some_and(|peer| is_trusted(peer, proxies)) => proto,
        _ => own,
    }
}

fn is_trusted(address: IpAddr, proxies: &[ipnet::IpNet]) -> bool {
    proxies.iter().any(|proxy| proxy.contains(&address))
}

#[cfg(test)]
#[path = "edge_tests.rs"]
mod tests;
