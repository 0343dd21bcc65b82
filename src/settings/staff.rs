//! Named staff tokens: only each token's SHA-256 is configured, with its holder's name and role.

use sha2::{Digest, Sha256};

use crate::domain::{hex, random_token, Role};

/// A named staff credential: only the SHA-256 of its token is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffToken {
    pub name: String,
    pub role: Role,
    pub sha256: [u8; 32],
}

impl StaffToken {
    /// The staff credential of `token` (only its digest is kept).
    pub fn new(name: &str, role: Role, token: &str) -> Self {
        StaffToken { name: name.to_owned(), role, sha256: Sha256::digest(token.as_bytes()).into() }
    }

    /// A new random token for `name` with `role`, and its `admin.staff_tokens` entry (the
    /// token's SHA-256 only).
    pub fn generate(name: &str, role: &str) -> Result<(String, String), String> {
        let role = Role::parse_staff(role).ok_or_else(|| format!("`{role}` is not underwriter, viewer or operator"))?;
        let token = random_token();
        let digest = hex::encode(&Sha256::digest(token.as_bytes()));
        let entry = format!("{}:{}:{digest}", name.trim(), role.as_str());
        StaffToken::parse(&entry)?;
        Ok((token, entry))
    }

    pub fn parse(entry: &str) -> Result<Self, String> {
        let mut parts = entry.trim().splitn(3, ':');
        let (Some(name), Some(role), Some(digest)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("`{entry}` is not name:role:sha256"));
        };
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
            return Err(format!("the name `{name}` must be letters, digits, `-`, `_` or `.`"));
        }
        let role = Role::parse_staff(role).ok_or_else(|| format!("`{role}` is not underwriter, viewer or operator"))?;
        let digest = digest.trim();
        let sha256 = hex::decode(digest)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| format!("the digest of `{name}` is not 64 hex digits"))?;
        Ok(StaffToken { name: name.to_owned(), role, sha256 })
    }
}
