//! JSON Web Tokens from a bank's identity provider as staff credentials: signed by a key of the
//! configured file (a PEM public key, or a JWKS), with the configured `iss` and `aud`, not
//! expired; the holder's role is the highest staff role its roles claim lists. The key file is
//! read again when it changes, so a rotated key is picked up without a restart.

use std::sync::Mutex;
use std::time::SystemTime;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::domain::Role;
use crate::settings::JwtSettings;

/// Seconds of clock difference with the identity provider that are forgiven.
const LEEWAY_SECONDS: u64 = 30;

/// Who a valid JWT says its holder is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtGrant {
    pub subject: String,
    pub role: Role,
    /// When the token expires (seconds since the epoch).
    pub expires_at: i64,
}

/// One verification key: its id (JWKS), the algorithm it verifies, the key.
struct Key {
    id: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// The keys of the file as last read, and when it was changed then.
struct Loaded {
    modified: Option<SystemTime>,
    keys: Vec<Key>,
}

pub struct JwtVerifier {
    settings: JwtSettings,
    loaded: Mutex<Option<Loaded>>,
}

impl JwtVerifier {
    /// None when no key file is configured (JWTs are then refused like any unknown token).
    pub fn new(settings: &JwtSettings) -> Option<Self> {
        settings.enabled().then(|| Self { settings: settings.clone(), loaded: Mutex::new(None) })
    }

    /// The grant of a valid token; None for anything else (a bad signature, `alg: none`,
    /// another issuer or audience, an expired token, no staff role).
    pub fn verify(&self, token: &str) -> Option<JwtGrant> {
        let header = decode_header(token).ok()?;
        let claims = self.with_keys(|keys| {
            keys.iter()
                .filter(|key| key.algorithm == header.alg)
                .filter(|key| header.kid.is_none() || key.id.is_none() || key.id == header.kid)
                .find_map(|key| decode::<Value>(token, &key.key, &self.validation(key.algorithm)).ok())
        })??;
        let claims = claims.claims;
        let role = highest_role(claims.get(self.settings.roles_claim.as_str())?)?;
        let subject = claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_owned();
        let expires_at = claims.get("exp").and_then(Value::as_i64)?;
        Some(JwtGrant { subject, role, expires_at })
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[self.settings.issuer.trim()]);
        validation.set_audience(&[self.settings.audience.trim()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = LEEWAY_SECONDS;
        validation
    }

    /// Run `f` over the current keys, reading the file again if it changed since.
    fn with_keys<T>(&self, f: impl FnOnce(&[Key]) -> T) -> Option<T> {
        let path = self.settings.key_file.trim();
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if loaded.as_ref().is_none_or(|l| l.modified != modified) {
            match read_keys(path, &self.settings.algorithm) {
                Ok(keys) => *loaded = Some(Loaded { modified, keys }),
                // The keys read before stay in use until the file reads again.
                Err(err) => tracing::warn!(file = path, error = %err, "the JWT key file cannot be read"),
            }
        }
        loaded.as_ref().map(|l| f(&l.keys))
    }
}

/// The keys of a JWKS file, or the one key of a PEM file (of `algorithm`).
fn read_keys(path: &str, algorithm: &str) -> Result<Vec<Key>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    if text.trim_start().starts_with('{') {
        let set: JwkSet = serde_json::from_str(&text).map_err(|e| format!("not a JWKS: {e}"))?;
        let keys = set.keys.iter().filter_map(|jwk| {
            let algorithm = jwk.common.key_algorithm?.to_string().parse().ok()?;
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some(Key { id: jwk.common.key_id.clone(), algorithm, key })
        });
        return Ok(keys.collect());
    }
    let algorithm: Algorithm = algorithm.parse().map_err(|_| format!("`{algorithm}` is not an algorithm"))?;
    let pem = text.as_bytes();
    let key = match algorithm {
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem),
        Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
        _ => DecodingKey::from_rsa_pem(pem),
    }
    .map_err(|e| format!("not a {algorithm:?} public key: {e}"))?;
    Ok(vec![Key { id: None, algorithm, key }])
}

/// The most a token's roles allow: the operator's over the underwriter's over the viewer's.
fn highest_role(claim: &Value) -> Option<Role> {
    let listed: Vec<&str> = match claim {
        Value::String(one) => one.split_whitespace().collect(),
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => return None,
    };
    [Role::Operator, Role::Underwriter, Role::Viewer].into_iter().find(|role| listed.contains(&role.as_str()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_highest_listed_staff_role_counts() {
        assert_eq!(highest_role(&json!(["viewer", "operator"])), Some(Role::Operator));
        assert_eq!(highest_role(&json!("underwriter viewer")), Some(Role::Underwriter));
        assert_eq!(highest_role(&json!(["applicant", "admin"])), None);
        assert_eq!(highest_role(&json!(7)), None);
    }
}
