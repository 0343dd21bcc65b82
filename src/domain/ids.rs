//! Identifiers as newtypes over [`Uuid`], so a loan id can never be passed where a message id is
//! expected (and neither is a bare `String`).
//!
//! Both are generated as UUID v7: the timestamp comes first, so the canonical lowercase hyphenated
//! string sorts by creation time, which keeps database indexes append-mostly and makes ids
//! roughly chronological in listings and logs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A string that is not a UUID was offered as an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid id {input:?}: expected a UUID such as 0190b6e2-7c3a-7d4e-8f00-0123456789ab")]
pub struct InvalidId {
    /// The rejected input, cut to a bounded length so a hostile path cannot flood the logs.
    pub input: String,
}

impl InvalidId {
    const MAX_ECHO: usize = 64;

    fn new(input: &str) -> Self {
        Self { input: input.chars().take(Self::MAX_ECHO).collect() }
    }
}

/// Defines a UUID newtype with the shared parsing, formatting and generation behaviour.
macro_rules! uuid_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new time-ordered (v7) id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses any textual UUID form the `uuid` crate accepts (hyphenated, simple,
            /// braced, URN), surrounding whitespace not included.
            pub fn parse(input: &str) -> Result<Self, InvalidId> {
                Uuid::parse_str(input)
                    .map(Self)
                    .map_err(|_| InvalidId::new(input))
            }

            /// Wraps an existing UUID (e.g. one read back from storage).
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                Self::parse(input)
            }
        }

        /// Canonical lowercase hyphenated form, the form stored and returned by the API.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }
    };
}

uuid_newtype!(
    /// Identifies one mortgage application for its whole life.
    LoanId
);

uuid_newtype!(
    /// Identifies one request for information an underwriter sent an applicant.
    RequestId
);

uuid_newtype!(
    /// Identifies one message (an envelope): its outbox row, its AMQP message id, its dead letter.
    MessageId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_v7_and_sort_by_creation() {
        let ids: Vec<LoanId> = (0..200).map(|_| LoanId::generate()).collect();
        assert!(ids.iter().all(|id| id.as_uuid().get_version_num() == 7));
        let strings: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let mut sorted = strings.clone();
        sorted.sort();
        assert_eq!(strings, sorted);
        assert_eq!(MessageId::generate().as_uuid().get_version_num(), 7);
    }

    #[test]
    fn display_is_canonical_lowercase_hyphenated() {
        let id = LoanId::parse("0190B6E2-7C3A-7D4E-8F00-0123456789AB").unwrap();
        assert_eq!(id.to_string(), "0190b6e2-7c3a-7d4e-8f00-0123456789ab");
        let simple = MessageId::parse("0190b6e27c3a7d4e8f000123456789ab").unwrap();
        assert_eq!(simple.to_string(), "0190b6e2-7c3a-7d4e-8f00-0123456789ab");
    }

    #[test]
    fn parse_round_trips_and_rejects_garbage() {
        let id = LoanId::generate();
        assert_eq!(id.to_string().parse::<LoanId>().unwrap(), id);
        assert_eq!(LoanId::from_uuid(*id.as_uuid()), id);
        for bad in ["", "not-a-uuid", "0190b6e2-7c3a-7d4e-8f00-0123456789a", "123"] {
            assert!(LoanId::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn invalid_id_echo_is_bounded() {
        let long = "x".repeat(10_000);
        let err = LoanId::parse(&long).unwrap_err();
        assert_eq!(err.input.len(), InvalidId::MAX_ECHO);
    }

    #[test]
    fn serde_is_a_plain_string() {
        let id = LoanId::parse("0190b6e2-7c3a-7d4e-8f00-0123456789ab").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"0190b6e2-7c3a-7d4e-8f00-0123456789ab\"");
        assert_eq!(serde_json::from_str::<LoanId>(&json).unwrap(), id);
    }
}
