//! Shapes the code builds by hand (request body, stats, schedule, health, stream messages,
//! dead letters), and the schemas of domain types (money, rejection reasons).

use std::collections::BTreeMap;

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::domain::{Money, RejectionReason};

/// Money: a JSON number of EUR with at most two decimals.
impl PartialSchema for Money {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
            .description(Some("EUR, a JSON number with at most two decimals"))
            .into()
    }
}

impl ToSchema for Money {}

impl PartialSchema for RejectionReason {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["credit_score_too_low", "loan_to_value_too_high", "debt_to_income_too_high"]))
            .into()
    }
}

impl ToSchema for RejectionReason {}

/// A request amount that must be greater than 0.
pub struct PositiveMoney;

impl PartialSchema for PositiveMoney {
    fn schema() -> RefOr<Schema> {
        request_money().exclusive_minimum(Some(0)).description(Some("EUR, greater than 0, at most two decimals")).into()
    }
}

impl ToSchema for PositiveMoney {}

/// A request amount that may be 0.
pub struct NonNegativeMoney;

impl PartialSchema for NonNegativeMoney {
    fn schema() -> RefOr<Schema> {
        request_money().minimum(Some(0)).description(Some("EUR, 0 or more, at most two decimals")).into()
    }
}

impl ToSchema for NonNegativeMoney {}

fn request_money() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Number)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
        .maximum(Some(Money::MAX_ABS_UNITS))
}

/// `POST /api/v1/loans`: unknown fields are ignored.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LoanApplicationRequest {
    applicant: ApplicantRequest,
    property: PropertyRequest,
    /// At most `property.declared_value`.
    amount: PositiveMoney,
    #[schema(minimum = 12, maximum = 480)]
    term_months: i64,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ApplicantRequest {
    #[schema(min_length = 1, max_length = 200, example = "Barbara Liskov")]
    name: String,
    #[schema(max_length = 254, example = "barbara@example.com")]
    email: String,
    annual_income: PositiveMoney,
    monthly_debts: NonNegativeMoney,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PropertyRequest {
    /// Contains `#fail-appraisal` to make the appraisal fail (the loan ends cancelled).
    #[schema(min_length = 1, max_length = 500, example = "12 Harbour Road, Lisbon")]
    address: String,
    declared_value: PositiveMoney,
}

/// `GET /api/v1/loans/stats`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LoanStats {
    total: i64,
    /// Loans per status; every status is present.
    by_status: BTreeMap<String, i64>,
}

/// The stored repayment schedule of an approved loan.
#[derive(ToSchema)]
#[schema(as = ScheduleDocument)]
#[allow(dead_code)]
pub struct ScheduleView {
    loan_id: String,
    currency: String,
    amount: Money,
    rate_bps: u32,
    term_months: u16,
    monthly_payment: Money,
    lines: Vec<ScheduleLine>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ScheduleLine {
    /// 1-based.
    month: u16,
    #[schema(format = Date)]
    due_date: String,
    payment: Money,
    interest: Money,
    principal: Money,
    balance: Money,
}

/// `GET /health/live`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Liveness {
    #[schema(example = "live")]
    status: String,
}

/// `GET /health/ready`: one entry per dependency under `checks`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    status: String,
    node_id: String,
    /// `embedded` or `cluster`.
    mode: String,
    checks: BTreeMap<String, serde_json::Value>,
}

/// One event as the streams send it (a WebSocket frame, or an SSE `data:` line whose `id:`
/// is the event's `id`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LiveEventMessage {
    /// The event's global id, as in `GET /api/v1/loans/{id}/events`.
    id: i64,
    /// The event type, e.g. `CreditChecked`.
    #[schema(rename = "type")]
    kind: String,
    loan_id: String,
    /// The loan's status after the event.
    status: String,
    at: String,
    data: serde_json::Value,
}

/// `GET /admin/dead-letters`: newest first.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DeadLetterList {
    items: Vec<crate::http::dead_letters::DeadLetterView>,
}

/// `POST /admin/dead-letters/{id}/replay`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DeadLetterReplay {
    message_id: String,
    loan_id: String,
    #[schema(example = "replayed")]
    status: String,
}
