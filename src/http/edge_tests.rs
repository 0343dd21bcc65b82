//! The edge's decisions, one request shape at a time.

use actix_web::http::header::{HeaderName, HeaderValue};

use super::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
    }
    map
}

fn loopback() -> AllowedHosts {
    AllowedHosts::Only(vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()])
}

#[test]
fn a_foreign_host_is_misdirected_unless_every_host_is_answered() {
    assert_eq!(misdirected(&loopback(), Some("127.0.0.1:8080")), None);
    assert_eq!(misdirected(&loopback(), Some("evil.example")), Some("evil.example"));
    assert_eq!(misdirected(&loopback(), None), Some(""));
    assert_eq!(misdirected(&AllowedHosts::Any, Some("evil.example")), None);
    assert!(is_probe("/health/ready") && is_probe("/metrics") && !is_probe("/metricsx") && !is_probe("/api/v1/loans"));
}

#[test]
fn the_own_origin_and_listed_origins_pass_others_do_not() {
    let none: Vec<String> = vec![];
    assert!(origin_allowed("http://127.0.0.1:8080", "http", Some("127.0.0.1:8080"), &none));
    assert!(origin_allowed("HTTP://LOCALHOST:8080", "http", Some("localhost:8080"), &none));
    assert!(!origin_allowed("http://127.0.0.1:9090", "http", Some("127.0.0.1:8080"), &none));
    assert!(!origin_allowed("https://127.0.0.1:8080", "http", Some("127.0.0.1:8080"), &none), "another scheme");
    assert!(!origin_allowed("https://evil.example", "http", Some("127.0.0.1:8080"), &none));
    assert!(!origin_allowed("null", "http", Some("127.0.0.1:8080"), &none));
    let listed = vec!["https://app.example".to_owned()];
    assert!(origin_allowed("https://app.example", "http", Some("127.0.0.1:8080"), &listed));
    assert!(!origin_allowed("https://app.example.evil", "http", Some("127.0.0.1:8080"), &listed));
    assert!(origin_allowed("https://anything.example", "http", None, &["*".to_owned()]));
}

#[test]
fn only_a_json_body_is_json() {
    assert!(is_json(&headers(&[("content-type", "application/json")])));
    assert!(is_json(&headers(&[("content-type", "Application/JSON; charset=utf-8")])));
    assert!(!is_json(&headers(&[("content-type", "text/plain")])));
    assert!(!is_json(&headers(&[("content-type", "application/x-www-form-urlencoded")])));
    assert!(!is_json(&headers(&[])));
    assert!(has_body(&headers(&[("content-length", "12")])));
    assert!(has_body(&headers(&[("transfer-encoding", "chunked")])));
    assert!(!has_body(&headers(&[("content-length", "0")])) && !has_body(&headers(&[])));
}

#[test]
fn forwarded_headers_count_only_from_a_trusted_proxy() {
    let proxies: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
    let client: IpAddr = "203.0.113.7".parse().unwrap();
    let proxy: IpAddr = "10.1.2.3".parse().unwrap();
    let forwarded =
        headers(&[("x-forwarded-for", "198.51.100.1, 203.0.113.7, 10.9.9.9"), ("x-forwarded-proto", "https")]);
    // Behind the proxy: the last hop that is not a proxy (the first is whatever the client wrote).
    assert_eq!(client_address(Some(proxy), &forwarded, &proxies), Some(client));
    assert_eq!(client_scheme(Some(proxy), &forwarded, &proxies, "http"), "https");
    // Straight from a client: its own address and scheme, whatever it claims.
    assert_eq!(client_address(Some(client), &forwarded, &proxies), Some(client));
    assert_eq!(client_scheme(Some(client), &forwarded, &proxies, "http"), "http");
    assert_eq!(client_address(Some(proxy), &headers(&[]), &proxies), Some(proxy));
    let odd = headers(&[("x-forwarded-proto", "gopher")]);
    assert_eq!(client_scheme(Some(proxy), &odd, &proxies, "http"), "http");
}
