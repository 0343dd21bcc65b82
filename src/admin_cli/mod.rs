//! `loanflow admin`: the operator's command line, a client of a node's HTTP API (the admin
//! routes and the staff reads) with the operator token from the environment. Tables for people,
//! `--json` (the node's answer as it is) for scripts, and exit codes scripts can rely on
//! (`exit`).
//!
//! `args` is what can be asked, `plan` maps it to one request and one view, `client` sends it,
//! `views` renders the answer.

mod args;
mod client;
mod exit;
mod table;
mod views;

use std::time::Duration;

use client::{AdminClient, Call};
use exit::Failure;
use views::View;

pub use args::Options;
use args::{AdminCommand, DeadLettersCommand, LoansCommand};

/// The variable the operator token is read from: the node's own `admin.token` setting, so a
/// shell inside a node's container or pod has it already.
const TOKEN_VARIABLE: &str = "LOANFLOW__ADMIN__TOKEN";

/// Run one command; the exit code.
pub async fn main(options: Options) -> i32 {
    match run(&options).await {
        Ok(output) => {
            print!("{output}");
            0
        }
        Err(failure) => {
            eprintln!("loanflow admin: {failure}");
            failure.exit_code()
        }
    }
}

async fn run(options: &Options) -> Result<String, Failure> {
    let token = std::env::var(TOKEN_VARIABLE).ok();
    let client = AdminClient::new(&options.url, token, Duration::from_secs(options.timeout_secs))?;
    let (call, view) = plan(&options.command);
    let answer = client.send(call).await?;
    if options.json {
        let text = serde_json::to_string_pretty(&answer).map_err(|e| Failure::Unreadable { cause: e.to_string() })?;
        return Ok(format!("{text}\n"));
    }
    Ok(view.render(&answer))
}

/// The request a command makes, and how its answer is shown.
fn plan(command: &AdminCommand) -> (Call, View) {
    match command {
        AdminCommand::Loans(LoansCommand::List { status, limit, cursor }) => {
            let mut call = Call::get("/api/v1/loans", "/api/v1/loans".into()).query("limit", limit);
            if let Some(status) = status {
                call = call.query("status", status);
            }
            if let Some(cursor) = cursor {
                call = call.query("cursor", cursor);
            }
            (call, View::LoanPage)
        }
        AdminCommand::Loans(LoansCommand::Show { id }) => {
            (Call::get("/api/v1/loans/{id}", format!("/api/v1/loans/{id}")), View::Loan)
        }
        AdminCommand::Loans(LoansCommand::Stuck { older_than_secs, limit }) => (
            Call::get("/admin/loans", "/admin/loans".into())
                .query("stuck", true)
                .query("older_than_seconds", older_than_secs)
                .query("limit", limit),
            View::Stuck,
        ),
        AdminCommand::Loans(LoansCommand::Retry { id }) => {
            (Call::post("/admin/loans/{id}/retry", format!("/admin/loans/{id}/retry")), View::Retried)
        }
        AdminCommand::Loans(LoansCommand::Cancel { id, idempotency_key }) => (
            Call::post("/admin/loans/{id}/cancel", format!("/admin/loans/{id}/cancel"))
                .idempotency_key(idempotency_key.clone()),
            View::Cancelled(*id),
        ),
        AdminCommand::Timers => (Call::get("/admin/timers", "/admin/timers".into()), View::Timers),
        AdminCommand::DeadLetters(DeadLettersCommand::List { limit }) => {
            (Call::get("/admin/dead-letters", "/admin/dead-letters".into()).query("limit", limit), View::DeadLetters)
        }
        AdminCommand::DeadLetters(DeadLettersCommand::Replay { message_id }) => (
            Call::post("/admin/dead-letters/{id}/replay", format!("/admin/dead-letters/{message_id}/replay")),
            View::Replayed,
        ),
        AdminCommand::Nodes => (Call::get("/admin/actors", "/admin/actors".into()), View::Nodes),
        AdminCommand::Actors { kind } => {
            let mut call = Call::get("/admin/actors", "/admin/actors".into());
            if let Some(kind) = kind {
                call = call.query("kind", kind.as_str());
            }
            (call, View::Actors)
        }
    }
}
