//! What every handler shares.

use std::sync::Arc;

use super::jwt::JwtVerifier;
use super::rate_limit::RateLimiter;
use crate::actors::{AddressHandoff, Registry};
use crate::domain::TokenKey;
use crate::mailbox::Postman;
use crate::metrics::Metrics;
use crate::persistence::Database;
use crate::settings::Settings;

/// What handlers share.
pub struct AppState {
    pub db: Database,
    pub postman: Postman,
    pub registry: Arc<Registry>,
    pub settings: Arc<Settings>,
    pub node_id: String,
    pub metrics: Arc<Metrics>,
    /// Applicants' addresses on their way to the notifier: an erasure drops the loan's.
    pub addresses: Arc<AddressHandoff>,
    /// Submissions per client (`http.rate_limit_per_second`).
    pub rate_limiter: RateLimiter,
    /// The server secret applicant tokens are derived with.
    pub token_key: TokenKey,
    /// JSON Web Tokens of the identity provider, when one is configured.
    pub jwt: Option<JwtVerifier>,
}
