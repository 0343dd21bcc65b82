//! What every actor of a node shares.

use std::sync::Arc;

use super::handoff::AddressHandoff;
use super::registry::Registry;
use crate::mailbox::Postman;
use crate::metrics::Metrics;
use crate::persistence::Database;
use crate::settings::Settings;

/// What every actor needs: shared handles, cheap to clone.
#[derive(Clone)]
pub struct SharedHandles {
    pub db: Database,
    pub postman: Postman,
    pub settings: Arc<Settings>,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    /// Applicants' addresses on their way from the loan actors to the notifier.
    pub addresses: Arc<AddressHandoff>,
}
