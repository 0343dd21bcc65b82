//! One renderer per answer of the node: a table (or lines) for people.

mod cluster;
mod dead_letters;
mod loans;
mod stuck;
mod timers;

use serde_json::Value;
use uuid::Uuid;

/// Which answer a command gets, so which table shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    LoanPage,
    Loan,
    Stuck,
    Retried,
    Cancelled(Uuid),
    Timers,
    DeadLetters,
    Replayed,
    Nodes,
    Actors,
}

impl View {
    pub fn render(self, answer: &Value) -> String {
        match self {
            View::LoanPage => loans::page(answer),
            View::Loan => loans::loan(answer),
            View::Cancelled(id) => loans::cancelled(id, answer),
            View::Stuck => stuck::stuck(answer),
            View::Retried => stuck::retried(answer),
            View::Timers => timers::timers(answer),
            View::DeadLetters => dead_letters::list(answer),
            View::Replayed => dead_letters::replayed(answer),
            View::Nodes => cluster::nodes(answer),
            View::Actors => cluster::actors(answer),
        }
    }
}

/// The items of a list answer: `key`'s array, or none.
fn items<'a>(answer: &'a Value, key: &str) -> &'a [Value] {
    answer.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}
