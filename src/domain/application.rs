//! A mortgage application, parsed once at the HTTP edge: once a [`LoanApplication`] exists, every
//! field in it is valid, so nothing downstream re-checks.
//!
//! Stored applications are re-validated through the same `parse` functions, so a row edited by
//! hand cannot smuggle an invalid value past the rules. The JSON reading lives in
//! `application_parse.rs`.

use std::fmt;

use serde::Serialize;

use super::money::Money;

#[path = "application_parse.rs"]
mod parse;

/// Refuse characters that never belong in a name or an address: control characters (a NUL,
/// which PostgreSQL cannot store in text; line breaks, which forge lines in logs and exports)
/// and invisible ones that change how the text reads without showing (bidirectional overrides
/// and isolates, zero-width spaces and joiners, the byte-order mark).
fn refuse_hidden_characters(text: &str) -> Result<(), String> {
    match text.chars().find(|&c| c.is_control() || is_invisible_format(c)) {
        Some(c) => Err(format!("must not contain control characters or invisible ones (found U+{:04X})", u32::from(c))),
        None => Ok(()),
    }
}

/// Unicode format characters that render as nothing (or reorder what follows).
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// The applicant's name as given, trimmed: 1..=200 characters, not blank.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ApplicantName(String);

impl ApplicantName {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(input: &str) -> Result<Self, String> {
        let name = input.trim();
        if name.is_empty() {
            return Err("must not be blank".into());
        }
        if name.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        refuse_hidden_characters(name)?;
        Ok(Self(name.to_owned()))
    }
}

impl AsRef<str> for ApplicantName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A plausible e-mail address (not a proof of deliverability), trimmed, case kept as given.
///
/// `Debug` masks the address so that logging any structure containing it stays safe; use
/// [`Email::masked`] in log fields and `as_ref()` only where the full address is needed.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// RFC 5321's limit on a forward path.
    pub const MAX_CHARS: usize = 254;

    pub fn parse(input: &str) -> Result<Self, String> {
        let email = input.trim();
        if email.is_empty() {
            return Err("must not be blank".into());
        }
        if email.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        refuse_hidden_characters(email)?;
        if email.chars().any(char::is_whitespace) {
            return Err("must not contain whitespace".into());
        }
        let (local, domain) = match email.split_once('@') {
            Some((local, domain)) if !domain.contains('@') => (local, domain),
            _ => return Err("must contain exactly one '@'".into()),
        };
        if local.is_empty() {
            return Err("must have a non-empty part before '@'".into());
        }
        if !domain.contains('.') || domain.split('.').any(str::is_empty) {
            return Err("must have a domain such as example.com after '@'".into());
        }
        Ok(Self(email.to_owned()))
    }

    /// Lowercase form: the input of the credit-score hash and the key for comparisons.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }

    /// `j***@example.com`: enough to correlate log lines, not enough to identify the person.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.split_once('@').unwrap_or((&self.0, ""));
        let first: String = local.chars().take(1).collect();
        format!("{first}***@{domain}")
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Email").field(&self.masked()).finish()
    }
}

/// The property's address, trimmed: 1..=500 characters, not blank.
///
/// Stored exactly as parsed, because the appraisal hash is taken over these bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Address(String);

impl Address {
    pub const MAX_CHARS: usize = 500;

    /// The marker that makes the simulated appraisal fail permanently (see CONTRACT.md).
    pub const FAIL_APPRAISAL_MARKER: &'static str = "#fail-appraisal";

    pub fn parse(input: &str) -> Result<Self, String> {
        let address = input.trim();
        if address.is_empty() {
            return Err("must not be blank".into());
        }
        if address.chars().count() > Self::MAX_CHARS {
            return Err(format!("must be at most {} characters", Self::MAX_CHARS));
        }
        refuse_hidden_characters(address)?;
        Ok(Self(address.to_owned()))
    }

    pub fn fails_appraisal(&self) -> bool {
        self.0.contains(Self::FAIL_APPRAISAL_MARKER)
    }
}

impl AsRef<str> for Address {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Loan term in months, 12..=480 (one to forty years).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TermMonths(u16);

impl TermMonths {
    pub const MIN: u16 = 12;
    pub const MAX: u16 = 480;

    /// Takes `i64` so callers holding any integer type (JSON, an `i32` column) convert
    /// losslessly with `.into()` and the range check sees the real value.
    pub fn parse(months: i64) -> Result<Self, String> {
        match u16::try_from(months) {
            Ok(m) if (Self::MIN..=Self::MAX).contains(&m) => Ok(Self(m)),
            _ => Err(format!("must be between {} and {}", Self::MIN, Self::MAX)),
        }
    }

    pub fn get(&self) -> u16 {
        self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applicant {
    pub name: ApplicantName,
    pub email: Email,
    pub annual_income: Money,
    pub monthly_debts: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Property {
    pub address: Address,
    pub declared_value: Money,
}

/// A validated application. Serialises to the same JSON shape `POST /api/v1/loans` accepts, so
/// `LoanApplication::parse(&serde_json::to_value(&app)?)` gives `app` back; `Deserialize`
/// (in `application_parse.rs`) runs that same validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoanApplication {
    pub applicant: Applicant,
    pub property: Property,
    pub amount: Money,
    pub term_months: TermMonths,
}

/// One invalid field: `field` is the JSON path (`applicant.email`, `amount`), or `""` when the
/// body as a whole has the wrong shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "body {}", self.message)
        } else {
            write!(f, "{} {}", self.field, self.message)
        }
    }
}

/// Every problem found in a request body, so a client can fix them all in one round trip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid loan application: ")?;
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, "; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

#[cfg(test)]
#[path = "application_tests.rs"]
mod tests;
