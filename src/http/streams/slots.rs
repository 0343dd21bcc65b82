//! How many live streams may be open: per client address and on the node. A stream holds its
//! [`Slot`] for as long as it is open; other requests (health checks and metrics above all) are
//! never counted, so a client that opens streams without end cannot starve them of sockets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::settings::StreamSettings;

/// Why a stream was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("this client already holds {0} open streams")]
    ClientFull(usize),
    #[error("this node already serves {0} open streams")]
    NodeFull(usize),
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_client: HashMap<IpAddr, usize>,
}

/// The open streams of the node.
#[derive(Debug, Clone)]
pub struct StreamSlots {
    per_client: usize,
    total: usize,
    open: Arc<Mutex<Open>>,
}

impl StreamSlots {
    pub fn new(settings: &StreamSettings) -> Self {
        Self { per_client: settings.max_per_client, total: settings.max_total, open: Arc::default() }
    }

    /// A slot for one more stream of `client`, or why not.
    pub fn take(&self, client: IpAddr) -> Result<Slot, Refused> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let of_client = open.by_client.get(&client).copied().unwrap_or(0);
        if of_client >= self.per_client {
            return Err(Refused::ClientFull(of_client));
        }
        if open.total >= self.total {
            return Err(Refused::NodeFull(open.total));
        }
        open.total += 1;
        *open.by_client.entry(client).or_default() += 1;
        Ok(Slot { client, open: self.open.clone() })
    }
}

/// One open stream; dropping it frees its place.
#[derive(Debug)]
pub struct Slot {
    client: IpAddr,
    open: Arc<Mutex<Open>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total -= 1;
        if let Some(n) = open.by_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.by_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_capped_per_client_and_in_total_and_freed_when_they_end() {
        let slots = StreamSlots::new(&StreamSettings { max_per_client: 2, max_total: 3 });
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = slots.take(a).unwrap();
        let _second = slots.take(a).unwrap();
        assert_eq!(slots.take(a).unwrap_err(), Refused::ClientFull(2));
        let _third = slots.take(b).unwrap();
        assert_eq!(slots.take(b).unwrap_err(), Refused::NodeFull(3));
        drop(first);
        assert!(slots.take(a).is_ok(), "an ended stream frees its place");
    }
}
