//! The schemas of the domain types the views carry: money and rejection reasons (both serialise
//! by hand, so their schemas are written out).

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
