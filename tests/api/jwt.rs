//! JSON Web Tokens of a bank's identity provider as staff credentials: keys made with the real
//! `openssl`, tokens signed with `jsonwebtoken`, checked by the running service.

use std::path::{Path, PathBuf};
use std::process::Command;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, Db, TestApp};

const ISSUER: &str = "https://idp.bank.example";
const AUDIENCE: &str = "loanflow";

/// An EC P-256 key pair made by `openssl`: the private key (PKCS#8 PEM) and the public one.
fn key_pair(dir: &Path, name: &str) -> (Vec<u8>, PathBuf) {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let made = Command::new("openssl")
        .args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out"])
        .arg(&private)
        .status()
        .expect("openssl runs");
    assert!(made.success(), "openssl genpkey");
    let exported =
        Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(&private).arg("-out").arg(&public).status();
    assert!(exported.expect("openssl runs").success(), "openssl pkey -pubout");
    (std::fs::read(&private).unwrap(), public)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn sign(private: &[u8], claims: &Value) -> String {
    encode(&Header::new(Algorithm::ES256), claims, &EncodingKey::from_ec_pem(private).unwrap()).unwrap()
}

fn claims(roles: Value) -> Value {
    json!({ "sub": "vera@bank.example", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 300, "roles": roles })
}

/// An app that takes the JWTs of the ES256 public key in `key_file`.
async fn trusting(key_file: &Path) -> TestApp {
    let configured = key_file.to_string_lossy().into_owned();
    spawn_app_with(Db::Sqlite, move |s| {
        s.jwt.key_file = configured;
        s.jwt.algorithm = "ES256".into();
        s.jwt.issuer = ISSUER.into();
        s.jwt.audience = AUDIENCE.into();
    })
    .await
}

async fn status(app: &TestApp, path: &str, token: &str) -> u16 {
    app.anonymous.get(app.url(path)).bearer_auth(token).send().await.unwrap().status().as_u16()
}

#[actix_web::test]
async fn a_jwt_of_the_configured_key_issuer_and_audience_is_a_staff_credential() {
    let dir = tempfile::tempdir().unwrap();
    let (idp, idp_public) = key_pair(dir.path(), "idp");
    let (other, other_public) = key_pair(dir.path(), "other");
    let key_file = dir.path().join("jwt-key.pem");
    std::fs::copy(&idp_public, &key_file).unwrap();
    let app = trusting(&key_file).await;

    let viewer = sign(&idp, &claims(json!(["viewer"])));
    assert_eq!(status(&app, "/api/v1/loans/stats", &viewer).await, 200, "a viewer reads");
    assert_eq!(status(&app, "/admin/actors", &viewer).await, 403, "a viewer is no operator");
    let operator = sign(&idp, &claims(json!(["viewer", "operator"])));
    assert_eq!(status(&app, "/admin/actors", &operator).await, 200, "the highest role counts");

    let mut refused: Vec<(&str, String)> = vec![
        (
            "expired",
            sign(&idp, &json!({ "sub": "v", "iss": ISSUER, "aud": AUDIENCE, "exp": now() - 120, "roles": ["viewer"] })),
        ),
        (
            "another issuer",
            sign(
                &idp,
                &json!({ "iss": "https://evil.example", "aud": AUDIENCE, "exp": now() + 300, "roles": ["viewer"] }),
            ),
        ),
        (
            "another audience",
            sign(&idp, &json!({ "iss": ISSUER, "aud": "someone-else", "exp": now() + 300, "roles": ["viewer"] })),
        ),
        ("another key", sign(&other, &claims(json!(["viewer"])))),
        ("no staff role", sign(&idp, &claims(json!(["applicant"])))),
        ("no expiry", sign(&idp, &json!({ "iss": ISSUER, "aud": AUDIENCE, "roles": ["viewer"] }))),
    ];
    // `alg: none`: the viewer's claims, unsigned.
    let payload = viewer.split('.').nth(1).unwrap().to_owned();
    refused.push(("alg none", format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.")));
    for (what, token) in &refused {
        assert_eq!(status(&app, "/api/v1/loans/stats", token).await, 401, "{what}");
    }

    // The identity provider rotates its key: the new file is read on the next request.
    std::fs::copy(&other_public, &key_file).unwrap();
    let rotated = sign(&other, &claims(json!(["viewer"])));
    assert_eq!(status(&app, "/api/v1/loans/stats", &rotated).await, 200, "the new key");
    assert_eq!(status(&app, "/api/v1/loans/stats", &viewer).await, 401, "the old key no more");
}

/// A stream opened with a JWT ends when the JWT expires (a stream opened with a token that does
/// not expire stays open).
#[actix_web::test]
async fn a_stream_opened_with_a_jwt_ends_when_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let (idp, idp_public) = key_pair(dir.path(), "idp");
    let app = trusting(&idp_public).await;
    let expiring =
        sign(&idp, &json!({ "sub": "v", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 2, "roles": ["viewer"] }));
    let opened = std::time::Instant::now();
    let stream = app.anonymous.get(app.url("/api/v1/events/stream")).bearer_auth(&expiring).send().await.unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    let ended = tokio::time::timeout(std::time::Duration::from_secs(15), stream.bytes()).await;
    assert!(ended.is_ok(), "the stream outlived its JWT");
    assert!(opened.elapsed() >= std::time::Duration::from_millis(900), "ended too soon: {:?}", opened.elapsed());

    let lasting = app.client.get(app.url("/api/v1/events/stream")).send().await.unwrap();
    let still_open = tokio::time::timeout(std::time::Duration::from_secs(3), lasting.bytes()).await;
    assert!(still_open.is_err(), "a stream of a token that does not expire stays open");
}
