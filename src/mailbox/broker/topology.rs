//! Queue and exchange names, and declaring them. One durable queue per actor kind and, beside
//! it, its quarantine (where messages delivered before go, to be handled one at a time), a
//! dead-letter exchange and queue for messages the broker gives up on, and a fanout exchange
//! that carries committed events to every node's live streams.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

use crate::messages::ActorKind;
use crate::settings::{BrokerSettings, QueueType};

pub const DEAD_LETTER_EXCHANGE: &str = "loanflow.dlx";
pub const DEAD_LETTER_QUEUE: &str = "loanflow.dead-letters";
pub const EVENTS_EXCHANGE: &str = "loanflow.events";

pub fn queue_name(kind: ActorKind) -> &'static str {
    match kind {
        ActorKind::Loan => "loanflow.loan",
        ActorKind::Credit => "loanflow.credit",
        ActorKind::Appraisal => "loanflow.appraisal",
        ActorKind::Notifier => "loanflow.notifier",
    }
}

/// The quarantine of `kind`'s queue: messages delivered again (a node may have died handling
/// them), consumed one at a time, with the same delivery limit and dead-letter exchange.
pub fn quarantine_name(kind: ActorKind) -> &'static str {
    match kind {
        ActorKind::Loan => "loanflow.loan.quarantine",
        ActorKind::Credit => "loanflow.credit.quarantine",
        ActorKind::Appraisal => "loanflow.appraisal.quarantine",
        ActorKind::Notifier => "loanflow.notifier.quarantine",
    }
}

/// Which of a kind's two queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// The kind's queue, consumed with the configured prefetch.
    Main,
    /// Its quarantine, consumed one message at a time.
    Quarantine,
}

impl Lane {
    pub fn queue(self, kind: ActorKind) -> &'static str {
        match self {
            Lane::Main => queue_name(kind),
            Lane::Quarantine => quarantine_name(kind),
        }
    }
}

/// This node's own (exclusive, auto-deleted) queue on the events fanout.
pub fn events_queue(node_id: &str) -> String {
    format!("loanflow.events.{node_id}")
}

/// The AMQP header that carries a message's W3C trace context.
pub(super) const TRACEPARENT_HEADER: &str = "traceparent";

fn durable_queue_arguments(settings: &BrokerSettings) -> FieldTable {
    let mut args = FieldTable::default();
    let kind = match settings.queue_type {
        QueueType::Quorum => "quorum",
        QueueType::Classic => "classic",
    };
    args.insert("x-queue-type".into(), AMQPValue::LongString(kind.into()));
    args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(DEAD_LETTER_EXCHANGE.into()));
    if settings.queue_type == QueueType::Quorum {
        // The broker counts redeliveries (a node dying on a message) and dead-letters past this.
        args.insert("x-delivery-limit".into(), AMQPValue::LongInt(settings.delivery_limit as i32));
    }
    args
}

pub async fn declare(channel: &Channel, settings: &BrokerSettings, node_id: &str) -> lapin::Result<()> {
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    channel.exchange_declare(DEAD_LETTER_EXCHANGE.into(), ExchangeKind::Fanout, durable, FieldTable::default()).await?;
    channel.queue_declare(DEAD_LETTER_QUEUE.into(), QueueDeclareOptions::durable(), FieldTable::default()).await?;
    channel
        .queue_bind(
            DEAD_LETTER_QUEUE.into(),
            DEAD_LETTER_EXCHANGE.into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    for kind in ActorKind::ALL {
        for lane in [Lane::Main, Lane::Quarantine] {
            let arguments = durable_queue_arguments(settings);
            channel.queue_declare(lane.queue(kind).into(), QueueDeclareOptions::durable(), arguments).await?;
        }
    }
    channel.exchange_declare(EVENTS_EXCHANGE.into(), ExchangeKind::Fanout, durable, FieldTable::default()).await?;
    let own = QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() };
    channel.queue_declare(events_queue(node_id).as_str().into(), own, FieldTable::default()).await?;
    channel
        .queue_bind(
            events_queue(node_id).as_str().into(),
            EVENTS_EXCHANGE.into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}
