//! The bodies of the human steps' routes, read strictly: every field that is missing, of the
//! wrong kind, out of range or unknown is named by its path (422), and nothing is changed.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::super::errors::ApiError;
use crate::domain::{FieldError, RequestId, ValidationErrors};
use crate::saga::{Answers, InformationRequest, UnderwriterDecision};

/// Longest note, message and answer, in characters.
pub const MAX_TEXT: usize = 2_000;
/// Fields one request may ask for.
pub const MAX_FIELDS: usize = 10;
/// The longest deadline: 90 days.
pub const MAX_DUE_IN_SECONDS: i64 = 7_776_000;
const MAX_FIELD_NAME: usize = 64;

/// `POST /api/v1/loans/{id}/decision`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionRequest {
    /// `approve` or `reject`.
    #[schema(value_type = String, example = "approve")]
    pub decision: UnderwriterDecision,
    /// Why, for the loan's history (up to 2,000 characters).
    pub note: String,
}

/// `POST /api/v1/loans/{id}/information-requests`.
#[derive(Debug, Serialize, ToSchema)]
pub struct InformationRequestBody {
    /// What the applicant is asked (1 to 2,000 characters).
    pub message: String,
    /// 1 to 10 distinct names (letters, digits, `_`, `-`; up to 64 characters each).
    #[schema(example = json!(["employer", "net_monthly_salary"]))]
    pub fields: Vec<String>,
    /// 1 to 7,776,000 (90 days).
    pub due_in_seconds: i64,
}

/// `POST /api/v1/loans/{id}/information`.
#[derive(Debug, Serialize, ToSchema)]
pub struct InformationAnswer {
    /// The open request's id.
    #[schema(value_type = String)]
    pub request_id: RequestId,
    /// Exactly the requested fields, each non-blank text of at most 2,000 characters.
    #[schema(value_type = Object, example = json!({"employer": "ACME", "net_monthly_salary": "4200"}))]
    pub answers: Answers,
}

/// `POST /api/v1/loans/{id}/information-requests/{request_id}/deadline`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadlineExtension {
    /// The new deadline, from now: 1 to 7,776,000 seconds.
    pub due_in_seconds: i64,
}

/// Collects the field errors of one body.
#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field.into(), message.into()));
    }

    fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, ApiError> {
        if self.0.is_empty() {
            Ok(value())
        } else {
            Err(ApiError::InvalidBody(ValidationErrors(self.0)))
        }
    }
}

/// The body's object, with every key not in `known` refused.
fn object<'a>(json: &'a Value, known: &[&str], errors: &mut Errors) -> Option<&'a Map<String, Value>> {
    let Some(map) = json.as_object() else {
        errors.add("body", "must be a JSON object");
        return None;
    };
    for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
        errors.add(key.clone(), "is not a field of this request");
    }
    Some(map)
}

fn text(map: &Map<String, Value>, key: &str, blank_ok: bool, errors: &mut Errors) -> String {
    match map.get(key) {
        None => errors.add(key, "is required"),
        Some(Value::String(s)) if !blank_ok && s.trim().is_empty() => errors.add(key, "must not be blank"),
        Some(Value::String(s)) if s.chars().count() > MAX_TEXT => {
            errors.add(key, format!("must be at most {MAX_TEXT} characters"))
        }
        Some(Value::String(s)) => return s.clone(),
        Some(_) => errors.add(key, "must be a string"),
    }
    String::new()
}

fn due_in_seconds(map: &Map<String, Value>, errors: &mut Errors) -> i64 {
    match map.get("due_in_seconds").map(Value::as_i64) {
        None => errors.add("due_in_seconds", "is required"),
        Some(Some(n)) if (1..=MAX_DUE_IN_SECONDS).contains(&n) => return n,
        Some(_) => errors.add("due_in_seconds", format!("must be an integer from 1 to {MAX_DUE_IN_SECONDS}")),
    }
    0
}

pub fn decision(json: &Value) -> Result<DecisionRequest, ApiError> {
    let mut errors = Errors::default();
    let Some(map) = object(json, &["decision", "note"], &mut errors) else { return errors.finish(|| unreachable!()) };
    let decision = match map.get("decision").and_then(Value::as_str) {
        Some("approve") => Some(UnderwriterDecision::Approve),
        Some("reject") => Some(UnderwriterDecision::Reject),
        _ => {
            errors.add("decision", "must be \"approve\" or \"reject\"");
            None
        }
    };
    let note = text(map, "note", true, &mut errors);
    errors.finish(|| DecisionRequest { decision: decision.unwrap_or(UnderwriterDecision::Reject), note })
}

pub fn information_request(json: &Value) -> Result<InformationRequestBody, ApiError> {
    let mut errors = Errors::default();
    let known = ["message", "fields", "due_in_seconds"];
    let Some(map) = object(json, &known, &mut errors) else { return errors.finish(|| unreachable!()) };
    let message = text(map, "message", false, &mut errors);
    let mut fields = Vec::new();
    match map.get("fields") {
        Some(Value::Array(items)) if (1..=MAX_FIELDS).contains(&items.len()) => {
            let mut seen = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(name) if !is_field_name(name) => errors.add(
                        format!("fields.{i}"),
                        format!("must be 1 to {MAX_FIELD_NAME} letters, digits, `_` or `-`"),
                    ),
                    Some(name) if !seen.insert(name) => errors.add(format!("fields.{i}"), "is named twice"),
                    Some(name) => fields.push(name.to_owned()),
                    None => errors.add(format!("fields.{i}"), "must be a string"),
                }
            }
        }
        None => errors.add("fields", "is required"),
        Some(_) => errors.add("fields", format!("must be an array of 1 to {MAX_FIELDS} names")),
    }
    let due_in_seconds = due_in_seconds(map, &mut errors);
    errors.finish(|| InformationRequestBody { message, fields, due_in_seconds })
}

fn is_field_name(name: &str) -> bool {
    (1..=MAX_FIELD_NAME).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub fn deadline_extension(json: &Value) -> Result<DeadlineExtension, ApiError> {
    let mut errors = Errors::default();
    let Some(map) = object(json, &["due_in_seconds"], &mut errors) else { return errors.finish(|| unreachable!()) };
    let due_in_seconds = due_in_seconds(map, &mut errors);
    errors.finish(|| DeadlineExtension { due_in_seconds })
}

/// The request id an answer names (its shape only; whether it is the open one is the saga's).
pub fn answered_request(json: &Value) -> Result<RequestId, ApiError> {
    let mut errors = Errors::default();
    let Some(map) = object(json, &["request_id", "answers"], &mut errors) else {
        return errors.finish(|| unreachable!());
    };
    let id = map.get("request_id").and_then(Value::as_str).and_then(|s| RequestId::parse(s).ok());
    if id.is_none() {
        errors.add("request_id", "must be the id of the open request");
    }
    if !map.get("answers").is_some_and(Value::is_object) {
        errors.add("answers", "must be an object of the requested fields");
    }
    errors.finish(|| id.unwrap_or_else(RequestId::generate))
}

/// The answers to `open`: exactly its fields, each non-blank text of at most 2,000 characters.
pub fn answers(json: &Value, open: &InformationRequest) -> Result<InformationAnswer, ApiError> {
    let mut errors = Errors::default();
    let empty = Map::new();
    let given = json.get("answers").and_then(Value::as_object).unwrap_or(&empty);
    let mut answers = Answers::new();
    for field in &open.fields {
        let path = format!("answers.{field}");
        match given.get(field) {
            None => errors.add(path, "is missing"),
            Some(Value::String(s)) if s.trim().is_empty() => errors.add(path, "must not be blank"),
            Some(Value::String(s)) if s.chars().count() > MAX_TEXT => {
                errors.add(path, format!("must be at most {MAX_TEXT} characters"))
            }
            Some(Value::String(s)) => {
                answers.insert(field.clone(), s.clone());
            }
            Some(_) => errors.add(path, "must be text"),
        }
    }
    for key in given.keys().filter(|k| !open.fields.contains(k)) {
        errors.add(format!("answers.{key}"), "was not asked for");
    }
    errors.finish(|| InformationAnswer { request_id: open.id, answers })
}
