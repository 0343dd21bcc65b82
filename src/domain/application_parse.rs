//! Reading a [`LoanApplication`] out of a JSON body, collecting every field error on the way.
//!
//! Conventions: a missing field and an explicit `null` are both "is required"; a value of the
//! wrong JSON type says which type is expected; unknown fields are ignored so clients can send
//! more than we need. `term_months` must be a JSON integer: `360.0` is rejected like `12.5`,
//! because a float there signals a client bug rather than a term.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::{
    Address, Applicant, ApplicantName, Email, FieldError, LoanApplication, Money, Property, TermMonths,
    ValidationErrors,
};

type Object = Map<String, Value>;

impl LoanApplication {
    /// Parses a `POST /api/v1/loans` body; see the module docs for the conventions.
    pub fn parse(body: &Value) -> Result<LoanApplication, ValidationErrors> {
        let Some(root) = body.as_object() else {
            return Err(ValidationErrors(vec![FieldError::new("", "must be an object")]));
        };
        let mut reader = FieldReader::default();
        let applicant = reader.object(root, "applicant").and_then(|obj| read_applicant(&mut reader, obj));
        let property = reader.object(root, "property").and_then(|obj| read_property(&mut reader, obj));
        let amount = reader.money(root, "amount", require_positive);
        let term_months = reader
            .integer(root, "term_months")
            .and_then(|months| reader.check("term_months", TermMonths::parse(months)));

        if let (Some(property), Some(amount)) = (&property, amount) {
            if amount > property.declared_value {
                reader.fail("amount", "must not exceed property.declared_value");
            }
        }
        match (applicant, property, amount, term_months) {
            (Some(applicant), Some(property), Some(amount), Some(term_months)) if reader.errors.is_empty() => {
                Ok(LoanApplication { applicant, property, amount, term_months })
            }
            _ => Err(ValidationErrors(reader.errors)),
        }
    }
}

/// Deserialising goes through [`LoanApplication::parse`], so a stored document is re-validated
/// and can never produce an invalid application.
impl<'de> Deserialize<'de> for LoanApplication {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        LoanApplication::parse(&value).map_err(serde::de::Error::custom)
    }
}

fn read_applicant(reader: &mut FieldReader, obj: &Object) -> Option<Applicant> {
    // Every field is read before `?` so that all errors are collected.
    let name = reader.string(obj, "applicant.name", ApplicantName::parse);
    let email = reader.string(obj, "applicant.email", Email::parse);
    let annual_income = reader.money(obj, "applicant.annual_income", require_positive);
    let monthly_debts = reader.money(obj, "applicant.monthly_debts", require_non_negative);
    Some(Applicant { name: name?, email: email?, annual_income: annual_income?, monthly_debts: monthly_debts? })
}

fn read_property(reader: &mut FieldReader, obj: &Object) -> Option<Property> {
    let address = reader.string(obj, "property.address", Address::parse);
    let declared_value = reader.money(obj, "property.declared_value", require_positive);
    Some(Property { address: address?, declared_value: declared_value? })
}

fn require_positive(money: Money) -> Result<Money, String> {
    if money > Money::ZERO {
        Ok(money)
    } else {
        Err("must be greater than 0".into())
    }
}

fn require_non_negative(money: Money) -> Result<Money, String> {
    if money >= Money::ZERO {
        Ok(money)
    } else {
        Err("must not be negative".into())
    }
}

/// Reads fields by JSON path (`applicant.email`), recording one error per bad field.
#[derive(Default)]
struct FieldReader {
    errors: Vec<FieldError>,
}

impl FieldReader {
    fn fail(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(path, message));
    }

    fn check<T>(&mut self, path: &str, result: Result<T, String>) -> Option<T> {
        result.map_err(|message| self.fail(path, message)).ok()
    }

    /// The value at the last segment of `path`; records "is required" when absent or null.
    fn value<'a>(&mut self, obj: &'a Object, path: &str) -> Option<&'a Value> {
        let key = path.rsplit('.').next().unwrap_or(path);
        match obj.get(key) {
            None | Some(Value::Null) => {
                self.fail(path, "is required");
                None
            }
            Some(value) => Some(value),
        }
    }

    fn object<'a>(&mut self, obj: &'a Object, path: &str) -> Option<&'a Object> {
        let value = self.value(obj, path)?;
        let object = value.as_object();
        if object.is_none() {
            self.fail(path, "must be an object");
        }
        object
    }

    fn string<T>(&mut self, obj: &Object, path: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        match self.value(obj, path)? {
            Value::String(text) => self.check(path, parse(text)),
            _ => {
                self.fail(path, "must be a string");
                None
            }
        }
    }

    fn money(&mut self, obj: &Object, path: &str, check: impl FnOnce(Money) -> Result<Money, String>) -> Option<Money> {
        match self.value(obj, path)? {
            Value::Number(number) => {
                let money = Money::parse_json(number).map_err(|e| e.to_string());
                self.check(path, money.and_then(check))
            }
            _ => {
                self.fail(path, "must be a number");
                None
            }
        }
    }

    /// Any JSON integer; values beyond `i64` are reported as out of range by clamping.
    fn integer(&mut self, obj: &Object, path: &str) -> Option<i64> {
        match self.value(obj, path)? {
            Value::Number(number) if number.is_i64() => number.as_i64(),
            Value::Number(number) if number.is_u64() => Some(i64::MAX),
            _ => {
                self.fail(path, "must be an integer");
                None
            }
        }
    }
}
