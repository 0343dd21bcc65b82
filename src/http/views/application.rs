//! The body of `POST /api/v1/loans`, as the OpenAPI document describes it.
//!
//! No type is deserialised from it: the handler reads plain JSON and `LoanApplication::parse`
//! checks it by hand, so that a refusal lists every invalid field at once. Its schema is
//! therefore written out here (the limits are the parser's) rather than derived.

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::domain::Money;

/// The schema of an application (`LoanApplicationRequest` in the document).
pub struct LoanApplicationRequest;

impl PartialSchema for LoanApplicationRequest {
    fn schema() -> RefOr<Schema> {
        let applicant = object(vec![
            ("name", text(Some(1), 200).examples(["Barbara Liskov"]).into()),
            ("email", text(None, 254).examples(["barbara@example.com"]).into()),
            ("annual_income", positive_money()),
            ("monthly_debts", non_negative_money()),
        ]);
        let property = object(vec![
            (
                "address",
                text(Some(1), 500)
                    .description(Some(
                        "Contains `#fail-appraisal` to make the appraisal fail (the loan ends cancelled).",
                    ))
                    .examples(["12 Harbour Road, Lisbon"])
                    .into(),
            ),
            ("declared_value", positive_money()),
        ]);
        let term_months = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(12))
            .maximum(Some(480));
        object(vec![
            ("applicant", applicant.into()),
            ("property", property.into()),
            (
                "amount",
                positive_money_with("EUR, greater than 0, at most two decimals; at most `property.declared_value`"),
            ),
            ("term_months", term_months.into()),
        ])
        .description(Some("`POST /api/v1/loans`: unknown fields are ignored."))
        .into()
    }
}

impl ToSchema for LoanApplicationRequest {}

/// An object whose properties are all required.
fn object(properties: Vec<(&str, RefOr<Schema>)>) -> ObjectBuilder {
    properties.into_iter().fold(ObjectBuilder::new().schema_type(Type::Object), |object, (name, schema)| {
        object.property(name, schema).required(name)
    })
}

fn text(min_length: Option<usize>, max_length: usize) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).min_length(min_length).max_length(Some(max_length))
}

fn request_money() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Number)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
        .maximum(Some(Money::MAX_ABS_UNITS))
}

fn positive_money_with(description: &str) -> RefOr<Schema> {
    request_money().exclusive_minimum(Some(0)).description(Some(description)).into()
}

fn positive_money() -> RefOr<Schema> {
    positive_money_with("EUR, greater than 0, at most two decimals")
}

fn non_negative_money() -> RefOr<Schema> {
    request_money().minimum(Some(0)).description(Some("EUR, 0 or more, at most two decimals")).into()
}
