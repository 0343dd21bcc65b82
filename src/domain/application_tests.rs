use serde_json::{json, Value};

use super::*;

fn valid_body() -> Value {
    json!({
        "applicant": {
            "name": "  Jane Doe ",
            "email": "Jane.Doe@Example.com",
            "annual_income": 85000,
            "monthly_debts": 450.5
        },
        "property": { "address": "1 Canal St, Amsterdam", "declared_value": 400000 },
        "amount": 300000,
        "term_months": 360,
        "unknown_extra": { "is": "ignored" }
    })
}

/// `valid_body()` with the value at JSON pointer `pointer` replaced (or removed when `None`).
fn body_with(pointer: &str, value: Option<Value>) -> Value {
    let mut body = valid_body();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let object = body.pointer_mut(parent).unwrap().as_object_mut().unwrap();
    match value {
        Some(value) => object.insert(key.to_owned(), value),
        None => object.remove(key),
    };
    body
}

fn error_fields(body: &Value) -> Vec<String> {
    let errors = LoanApplication::parse(body).expect_err("body should be invalid");
    errors.0.into_iter().map(|e| e.field).collect()
}

#[test]
fn parses_a_valid_body() {
    let app = LoanApplication::parse(&valid_body()).unwrap();
    assert_eq!(app.applicant.name.as_ref(), "Jane Doe");
    assert_eq!(app.applicant.email.as_ref(), "Jane.Doe@Example.com");
    assert_eq!(app.applicant.email.normalized(), "jane.doe@example.com");
    assert_eq!(app.applicant.annual_income, Money::from_cents(8_500_000));
    assert_eq!(app.applicant.monthly_debts, Money::from_cents(45_050));
    assert_eq!(app.property.address.as_ref(), "1 Canal St, Amsterdam");
    assert_eq!(app.property.declared_value, Money::from_cents(40_000_000));
    assert_eq!(app.amount, Money::from_cents(30_000_000));
    assert_eq!(app.term_months.get(), 360);
}

#[test]
fn serialised_application_parses_back_to_itself() {
    let app = LoanApplication::parse(&valid_body()).unwrap();
    let value = serde_json::to_value(&app).unwrap();
    assert_eq!(LoanApplication::parse(&value).unwrap(), app);
    let text = serde_json::to_string(&app).unwrap();
    assert_eq!(serde_json::from_str::<LoanApplication>(&text).unwrap(), app);
    let invalid = text.replace("\"term_months\":360", "\"term_months\":5");
    assert!(serde_json::from_str::<LoanApplication>(&invalid).is_err());
}

#[test]
fn boundaries_that_are_valid() {
    let cases = [
        ("/amount", json!(400000)),
        ("/amount", json!(0.01)),
        ("/term_months", json!(12)),
        ("/term_months", json!(480)),
        ("/applicant/monthly_debts", json!(0)),
        ("/applicant/name", json!("x".repeat(200))),
        ("/property/address", json!("é".repeat(500))),
        ("/applicant/annual_income", json!(10.50)),
    ];
    for (pointer, value) in cases {
        let body = body_with(pointer, Some(value.clone()));
        assert!(LoanApplication::parse(&body).is_ok(), "{pointer} = {value} should be valid");
    }
}

/// Each case sets one field (`None` removes it) of a valid body; the error must be reported at
/// exactly that field's path.
#[test]
fn each_invalid_field_is_reported_at_its_path() {
    #[rustfmt::skip]
    let cases: Vec<(&str, Option<Value>, &str)> = vec![
        ("applicant.name", None, "is required"),
        ("applicant.name", Some(json!(null)), "is required"),
        ("applicant.name", Some(json!("   ")), "must not be blank"),
        ("applicant.name", Some(json!("x".repeat(201))), "at most 200"),
        ("applicant.name", Some(json!("Jane\u{0}Doe")), "control characters"),
        ("applicant.name", Some(json!(42)), "must be a string"),
        ("applicant.email", Some(json!("jane")), "exactly one '@'"),
        ("applicant.email", Some(json!("a@b@c.com")), "exactly one '@'"),
        ("applicant.email", Some(json!("@example.com")), "before '@'"),
        ("applicant.email", Some(json!("jane@localhost")), "domain"),
        ("applicant.email", Some(json!("jane@example..com")), "domain"),
        ("applicant.email", Some(json!("jane@.com")), "domain"),
        ("applicant.email", Some(json!("ja ne@example.com")), "whitespace"),
        ("applicant.email", Some(json!(true)), "must be a string"),
        ("applicant.annual_income", Some(json!(0)), "greater than 0"),
        ("applicant.annual_income", Some(json!("85000")), "must be a number"),
        ("applicant.annual_income", Some(json!(1.005)), "2 decimal"),
        ("applicant.monthly_debts", Some(json!(-1)), "negative"),
        ("applicant.monthly_debts", None, "is required"),
        ("applicant", None, "is required"),
        ("applicant", Some(json!("Jane")), "must be an object"),
        ("property", Some(json!([])), "must be an object"),
        ("property.address", Some(json!("")), "must not be blank"),
        ("property.address", Some(json!("a".repeat(501))), "at most 500"),
        ("property.declared_value", Some(json!(-5)), "greater than 0"),
        ("property.declared_value", Some(json!(1e13)), "at most"),
        ("amount", Some(json!(0)), "greater than 0"),
        ("amount", Some(json!(400000.01)), "must not exceed property.declared_value"),
        ("amount", Some(json!("300000")), "must be a number"),
        ("amount", None, "is required"),
        ("term_months", Some(json!(11)), "between 12 and 480"),
        ("term_months", Some(json!(481)), "between 12 and 480"),
        ("term_months", Some(json!(-360)), "between 12 and 480"),
        ("term_months", Some(json!(u64::MAX)), "between 12 and 480"),
        ("term_months", Some(json!(12.5)), "must be an integer"),
        ("term_months", Some(json!(360.0)), "must be an integer"),
        ("term_months", Some(json!("360")), "must be an integer"),
    ];
    for (field, value, message_part) in cases {
        let pointer = format!("/{}", field.replace('.', "/"));
        let errors = LoanApplication::parse(&body_with(&pointer, value.clone())).expect_err("body should be invalid");
        assert_eq!(errors.0.len(), 1, "{field} = {value:?}: {errors}");
        assert_eq!(errors.0[0].field, field, "{field} = {value:?}");
        assert!(
            errors.0[0].message.contains(message_part),
            "{field} = {value:?}: message {:?} lacks {message_part:?}",
            errors.0[0].message
        );
    }
}

#[test]
fn wrong_top_level_shape_has_an_empty_path() {
    for body in [json!([]), json!("loan"), json!(null), json!(5)] {
        assert_eq!(error_fields(&body), vec![String::new()]);
    }
}

#[test]
fn all_errors_are_collected() {
    let body = json!({
        "applicant": { "name": "", "email": "nope", "annual_income": "x" },
        "property": { "declared_value": 0 },
        "amount": -1,
        "term_months": 1.5
    });
    assert_eq!(
        error_fields(&body),
        vec![
            "applicant.name",
            "applicant.email",
            "applicant.annual_income",
            "applicant.monthly_debts",
            "property.address",
            "property.declared_value",
            "amount",
            "term_months",
        ]
    );
    assert_eq!(error_fields(&json!({})), vec!["applicant", "property", "amount", "term_months"]);
}

#[test]
fn validation_errors_display_lists_every_field() {
    let errors = LoanApplication::parse(&body_with("/amount", None)).unwrap_err();
    assert_eq!(errors.to_string(), "invalid loan application: amount is required");
    let shape = LoanApplication::parse(&json!([])).unwrap_err();
    assert_eq!(shape.to_string(), "invalid loan application: body must be an object");
}

#[test]
fn email_is_masked_in_debug_and_logs() {
    let email = Email::parse(" jane.doe@example.com ").unwrap();
    assert_eq!(email.as_ref(), "jane.doe@example.com");
    assert_eq!(email.masked(), "j***@example.com");
    let app = LoanApplication::parse(&valid_body()).unwrap();
    let debug = format!("{app:?}");
    assert!(!debug.contains("Jane.Doe@"), "{debug}");
    assert!(debug.contains("J***@Example.com"), "{debug}");
}

#[test]
fn email_length_limit() {
    let local = "a".repeat(254 - "@example.com".len());
    assert!(Email::parse(&format!("{local}@example.com")).is_ok());
    assert!(Email::parse(&format!("{local}a@example.com")).is_err());
}

#[test]
fn address_fail_marker() {
    assert!(Address::parse("1 Main St #fail-appraisal").unwrap().fails_appraisal());
    assert!(!Address::parse("1 Main St #fail").unwrap().fails_appraisal());
}

#[test]
fn term_months_parse() {
    assert_eq!(TermMonths::parse(12).unwrap().get(), 12);
    assert_eq!(TermMonths::parse(480).unwrap().get(), 480);
    for bad in [0, 11, 481, -12, i64::from(u16::MAX) + 12, i64::MIN] {
        assert!(TermMonths::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn control_and_invisible_characters_are_refused_in_every_text_field() {
    for bad in ["a\u{0}b", "a\rb", "a\nb", "a\u{202E}b", "a\u{200B}b", "a\u{200D}b", "a\u{2066}b", "a\u{FEFF}b"] {
        assert!(ApplicantName::parse(bad).is_err(), "name {bad:?}");
        assert!(Address::parse(bad).is_err(), "address {bad:?}");
        assert!(Email::parse(&format!("{bad}@example.com")).is_err(), "email {bad:?}");
    }
    // Letters of any script, accents and ordinary punctuation stay welcome.
    assert!(ApplicantName::parse("Zoë O'Brien-Łukasiewicz 李").is_ok());
    assert!(Address::parse("Calle Mayor 5, 2ºB, 28013 Madrid").is_ok());
}
