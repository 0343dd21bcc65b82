//! Messages between actors as serialisable envelopes: the same bytes go into the outbox table
//! and, in cluster mode, onto a RabbitMQ queue.

use serde::{Deserialize, Serialize};

use crate::domain::{LoanId, MessageId, Money, RequestId, TraceParent};
use crate::saga::{LoanStatus, NoticeKind, SagaInput};
use crate::settings::NodeRole;

/// Which kind of actor a message is for (one durable queue per kind in cluster mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    Loan,
    Credit,
    Appraisal,
    Notifier,
}

impl ActorKind {
    pub const ALL: [ActorKind; 4] = [ActorKind::Loan, ActorKind::Credit, ActorKind::Appraisal, ActorKind::Notifier];

    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Loan => "loan",
            ActorKind::Credit => "credit",
            ActorKind::Appraisal => "appraisal",
            ActorKind::Notifier => "notifier",
        }
    }

    /// The role whose nodes consume this kind's queues (and run its actors).
    pub fn role(self) -> NodeRole {
        match self {
            ActorKind::Loan => NodeRole::Loans,
            ActorKind::Credit => NodeRole::Credit,
            ActorKind::Appraisal => NodeRole::Appraisal,
            ActorKind::Notifier => NodeRole::Notifier,
        }
    }
}

/// What a message asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum MessageBody {
    /// To the loan actor: an input for its saga.
    Saga(SagaInput),
    /// To the credit actor.
    CheckCredit { email: String },
    /// To the credit actor: compensate a completed check.
    ReleaseCreditCheck,
    /// To the appraisal actor.
    AppraiseProperty { address: String, declared_value: Money },
    /// To the appraisal actor: compensate a completed appraisal.
    VoidAppraisal,
    /// To the notifier actor. It carries no personal data: the notifier gets the address from
    /// the loan actor of its process in memory, or reads it from the loan's row when it sends. (An older message's `name` and `email` are ignored.)
    NotifyApplicant { status: LoanStatus },
    /// To the notifier actor: a notice of a request for information (or its reminder), which is
    /// not the terminal notification.
    SendNotice { request_id: RequestId, notice: NoticeKind },
}

/// What stands in for personal data in a redacted message.
pub const REDACTED: &str = "[redacted]";

impl MessageBody {
    pub fn destination(&self) -> ActorKind {
        match self {
            MessageBody::Saga(_) => ActorKind::Loan,
            MessageBody::CheckCredit { .. } | MessageBody::ReleaseCreditCheck => ActorKind::Credit,
            MessageBody::AppraiseProperty { .. } | MessageBody::VoidAppraisal => ActorKind::Appraisal,
            MessageBody::NotifyApplicant { .. } | MessageBody::SendNotice { .. } => ActorKind::Notifier,
        }
    }

    /// The same message with its personal data (an email, an address) replaced by
    /// [`REDACTED`]: what an operator's view of a stored message shows.
    pub fn redacted(&self) -> MessageBody {
        match self {
            MessageBody::CheckCredit { .. } => MessageBody::CheckCredit { email: REDACTED.to_owned() },
            MessageBody::AppraiseProperty { declared_value, .. } => {
                MessageBody::AppraiseProperty { address: REDACTED.to_owned(), declared_value: *declared_value }
            }
            other => other.clone(),
        }
    }

    /// A short label for logs, metrics and the outbox's `kind` column.
    pub fn label(&self) -> &'static str {
        match self {
            MessageBody::Saga(input) => match input {
                SagaInput::CreditChecked { .. } => "credit_checked",
                SagaInput::CreditCheckFailed { .. } => "credit_check_failed",
                SagaInput::PropertyAppraised { .. } => "property_appraised",
                SagaInput::AppraisalFailed { .. } => "appraisal_failed",
                SagaInput::CreditCheckReleased => "credit_check_released",
                SagaInput::AppraisalVoided => "appraisal_voided",
                SagaInput::ScheduleGenerated { .. } => "schedule_generated",
                SagaInput::ApplicantNotified { .. } => "applicant_notified",
                SagaInput::NoticeSent { .. } => "notice_sent",
                SagaInput::TimerFired { .. } => "timer_fired",
                SagaInput::ReviewOverdue => "review_overdue",
                SagaInput::Claim { .. } => "claim",
                SagaInput::Decide { .. } => "decide",
                SagaInput::RequestInformation { .. } => "request_information",
                SagaInput::ProvideInformation { .. } => "provide_information",
                SagaInput::ExtendDeadline { .. } => "extend_deadline",
                SagaInput::Cancel { .. } => "cancel",
            },
            MessageBody::CheckCredit { .. } => "check_credit",
            MessageBody::ReleaseCreditCheck => "release_credit_check",
            MessageBody::AppraiseProperty { .. } => "appraise_property",
            MessageBody::VoidAppraisal => "void_appraisal",
            MessageBody::NotifyApplicant { .. } => "notify_applicant",
            MessageBody::SendNotice { .. } => "send_notice",
        }
    }
}

/// An envelope handed to an actor.
#[derive(Debug, actix::Message)]
#[rtype(result = "()")]
pub struct Deliver(pub Envelope);

/// Cluster mode: make one attempt at a service call now, its answer thrown away, and say when it
/// has run. A request delivered again (a node may have died on it) is probed alone before it
/// goes back to its queue: a request that kills the node kills it here, with nothing else held.
#[derive(Debug, actix::Message)]
#[rtype(result = "()")]
pub struct Probe(pub Envelope);

/// Why a message exists, and so which outbox row acknowledges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Sent by a submission: no message caused it.
    Submission,
    /// Emitted by the handling of this message, with an outbox row of its own.
    Emitted(MessageId),
    /// A service's reply to this request, sent without a commit of its own: the request stays
    /// in the outbox until the receiver consumes it, in the same unit that applies the reply. A
    /// crash before that loses nothing: the request is delivered again and answered again (the
    /// services are idempotent). Saves one commit per service call.
    Reply(MessageId),
}

/// A message with its delivery metadata. Its JSON (the outbox's `envelope` column and the AMQP
/// body) keeps the cause as `causation_id` and, for a reply, `"uncommitted": true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub message_id: MessageId,
    pub loan_id: LoanId,
    pub cause: Cause,
    /// Delivery attempt, starting at 1; raised each time a handler fails on it.
    pub attempt: u32,
    pub destination: ActorKind,
    pub body: MessageBody,
    /// The span that sent it, when traces are exported: the step that handles it joins the
    /// loan's trace there. Absent from messages stored or sent without it.
    pub trace: Option<TraceParent>,
}

/// The stored and sent form of an envelope.
#[derive(Serialize)]
struct WireRef<'a> {
    message_id: &'a MessageId,
    loan_id: &'a LoanId,
    causation_id: Option<&'a MessageId>,
    attempt: u32,
    destination: ActorKind,
    body: &'a MessageBody,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    uncommitted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<&'a TraceParent>,
}

#[derive(Deserialize)]
struct Wire {
    message_id: MessageId,
    loan_id: LoanId,
    causation_id: Option<MessageId>,
    attempt: u32,
    destination: ActorKind,
    body: MessageBody,
    #[serde(default)]
    uncommitted: bool,
    /// A malformed one is dropped (the step starts a trace of its own), never fails the message.
    #[serde(default, deserialize_with = "lenient_traceparent")]
    traceparent: Option<TraceParent>,
}

fn lenient_traceparent<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<TraceParent>, D::Error> {
    let value = Option::<String>::deserialize(deserializer)?;
    Ok(value.as_deref().and_then(TraceParent::parse))
}

impl Serialize for Envelope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (causation_id, uncommitted) = match &self.cause {
            Cause::Submission => (None, false),
            Cause::Emitted(id) => (Some(id), false),
            Cause::Reply(id) => (Some(id), true),
        };
        WireRef {
            message_id: &self.message_id,
            loan_id: &self.loan_id,
            causation_id,
            attempt: self.attempt,
            destination: self.destination,
            body: &self.body,
            uncommitted,
            traceparent: self.trace.as_ref(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        let cause = match (wire.causation_id, wire.uncommitted) {
            (None, false) => Cause::Submission,
            (Some(id), false) => Cause::Emitted(id),
            (Some(id), true) => Cause::Reply(id),
            (None, true) => return Err(serde::de::Error::custom("an uncommitted reply without its request")),
        };
        Ok(Envelope {
            message_id: wire.message_id,
            loan_id: wire.loan_id,
            cause,
            attempt: wire.attempt,
            destination: wire.destination,
            body: wire.body,
            trace: wire.traceparent,
        })
    }
}

impl Envelope {
    /// A new message for `loan_id`, emitted by the handling of `causation` (none: a submission).
    pub fn new(loan_id: LoanId, causation: Option<MessageId>, body: MessageBody) -> Self {
        Self {
            message_id: MessageId::generate(),
            loan_id,
            cause: causation.map_or(Cause::Submission, Cause::Emitted),
            attempt: 1,
            destination: body.destination(),
            body,
            trace: None,
        }
    }

    /// The same message, sent from the span `trace` (none: traces are not exported).
    pub fn traced(self, trace: Option<TraceParent>) -> Self {
        Self { trace, ..self }
    }

    /// A service's reply to `request`, sent without committing it (see [`Cause::Reply`]).
    pub fn uncommitted_reply(request: &Envelope, body: MessageBody) -> Self {
        Self { cause: Cause::Reply(request.message_id), ..Self::new(request.loan_id, None, body) }
    }

    /// The message whose handling sent this one (none for a submission's).
    pub fn causation_id(&self) -> Option<MessageId> {
        match self.cause {
            Cause::Submission => None,
            Cause::Emitted(id) | Cause::Reply(id) => Some(id),
        }
    }

    /// A reply that has no outbox row of its own.
    pub fn is_uncommitted(&self) -> bool {
        matches!(self.cause, Cause::Reply(_))
    }

    /// The outbox row whose deletion acknowledges this message: its own, or for an uncommitted
    /// reply the request's.
    pub fn outbox_row(&self) -> MessageId {
        match self.cause {
            Cause::Reply(request) => request,
            Cause::Submission | Cause::Emitted(_) => self.message_id,
        }
    }

    /// The same message as a row of its own in the outbox (a dead letter being replayed).
    pub fn committed(self) -> Self {
        let cause = match self.cause {
            Cause::Reply(request) => Cause::Emitted(request),
            other => other,
        };
        Self { cause, ..self }
    }

    /// The same message, for another delivery attempt.
    pub fn retried(&self) -> Self {
        Self { attempt: self.attempt + 1, ..self.clone() }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an envelope always serialises")
    }

    pub fn from_json(s: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_through_json() {
        let env = Envelope::new(
            LoanId::generate(),
            Some(MessageId::generate()),
            MessageBody::AppraiseProperty { address: "1 Main St".into(), declared_value: Money::from_cents(1_234_567) },
        );
        let back = Envelope::from_json(&env.to_json()).unwrap();
        assert_eq!(back, env);
        assert_eq!(back.destination, ActorKind::Appraisal);
        assert_eq!(back.retried().attempt, 2);
        assert!(!env.to_json().contains("uncommitted"), "the common case keeps its old shape");
    }

    #[test]
    fn an_uncommitted_reply_is_acknowledged_by_its_request_row() {
        let request = Envelope::new(LoanId::generate(), None, MessageBody::ReleaseCreditCheck);
        let reply = Envelope::uncommitted_reply(&request, MessageBody::Saga(SagaInput::CreditCheckReleased));
        assert_eq!(reply.destination, ActorKind::Loan);
        assert_eq!(reply.outbox_row(), request.message_id);
        assert_eq!(request.outbox_row(), request.message_id);
        let back = Envelope::from_json(&reply.to_json()).unwrap();
        assert!(back.is_uncommitted());
        let replayed = back.committed();
        assert_eq!(replayed.outbox_row(), replayed.message_id);
        assert_eq!(replayed.causation_id(), Some(request.message_id));
    }

    #[test]
    fn the_trace_context_travels_when_present_and_old_messages_have_none() {
        let traceparent = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let traced = Envelope::new(LoanId::generate(), None, MessageBody::VoidAppraisal).traced(traceparent.clone());
        let json = traced.to_json();
        assert!(json.contains(r#""traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01""#), "{json}");
        assert_eq!(Envelope::from_json(&json).unwrap().trace, traceparent);

        let untraced = Envelope::new(LoanId::generate(), None, MessageBody::VoidAppraisal);
        assert!(!untraced.to_json().contains("traceparent"), "an untraced message keeps the old shape");
        assert_eq!(Envelope::from_json(&untraced.to_json()).unwrap().trace, None);

        let garbled = json.replace("00-4bf92f", "zz-4bf92f");
        let read = Envelope::from_json(&garbled).expect("a malformed trace context never fails the message");
        assert_eq!((read.trace, read.message_id), (None, traced.message_id));
    }
}
