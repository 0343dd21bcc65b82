//! What can go wrong when asking a node, and the exit code each gives scripts.

use std::fmt;

/// Shown by `loanflow admin --help`; docs/operations.md lists the same codes.
pub const EXIT_CODES_HELP: &str = "\
The operator token is read from LOANFLOW__ADMIN__TOKEN (the node's own setting, or a staff
token of role operator); it is never taken as an argument nor printed.

Exit codes:
  0  done
  1  the node refused the request otherwise (400, 422, 429, ...) or its answer was unreadable
  2  usage: a bad argument or URL
  3  not found: no such loan or dead letter
  4  auth: no token in the environment, a wrong one (401), or not an operator's (403)
  5  the node is unreachable, timed out, or failed (5xx)
  6  conflict (409): e.g. retrying a finished loan
  7  the node has no such route (a version without this command)";

/// Why a command failed; each kind has its exit code.
#[derive(Debug)]
pub enum Failure {
    Usage(String),
    NoToken,
    /// 401 or 403, with the node's explanation.
    Auth {
        status: u16,
        detail: String,
    },
    NotFound {
        detail: String,
    },
    /// The route is unknown to the node (`method path`).
    NoSuchRoute {
        route: String,
    },
    Conflict {
        detail: String,
    },
    Unreachable {
        url: String,
        cause: String,
    },
    /// A 5xx answer.
    NodeFailed {
        status: u16,
        detail: String,
    },
    /// Any other refusal.
    Refused {
        status: u16,
        detail: String,
    },
    /// An answer that is not the JSON expected.
    Unreadable {
        cause: String,
    },
}

impl Failure {
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Refused { .. } | Failure::Unreadable { .. } => 1,
            Failure::Usage(_) => 2,
            Failure::NotFound { .. } => 3,
            Failure::NoToken | Failure::Auth { .. } => 4,
            Failure::Unreachable { .. } | Failure::NodeFailed { .. } => 5,
            Failure::Conflict { .. } => 6,
            Failure::NoSuchRoute { .. } => 7,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(message) => write!(f, "{message}"),
            Failure::NoToken => write!(
                f,
                "no operator token: set LOANFLOW__ADMIN__TOKEN to the node's admin.token or to a staff token of role operator"
            ),
            Failure::Auth { status: 401, detail } => write!(f, "the node refused the token (401): {detail}"),
            Failure::Auth { status, detail } => write!(f, "the token is not an operator's ({status}): {detail}"),
            Failure::NotFound { detail } => write!(f, "{detail}"),
            Failure::NoSuchRoute { route } => {
                write!(f, "the node has no route {route}: it runs a loanflow version without this command")
            }
            Failure::Conflict { detail } => write!(f, "conflict (409): {detail}"),
            Failure::Unreachable { url, cause } => write!(f, "cannot reach the node at {url}: {cause}"),
            Failure::NodeFailed { status, detail } => write!(f, "the node failed ({status}): {detail}"),
            Failure::Refused { status, detail } => write!(f, "the node refused the request ({status}): {detail}"),
            Failure::Unreadable { cause } => write!(f, "the node's answer is not what this command reads: {cause}"),
        }
    }
}
