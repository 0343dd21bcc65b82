//! What every part of a node passes around: the envelopes actors send each other (the same
//! bytes go into the outbox table and onto RabbitMQ queues), the kinds of actor they are for,
//! and the committed events the live streams carry.

mod envelope;
mod live;
mod retry;

pub use envelope::{ActorKind, Deliver, Envelope, MessageBody, Probe};
pub use live::{EventBus, LiveEvent};
pub use retry::{backoff, backoff_at_least_half};
