//! The command line of `loanflow admin`: what an operator can ask a node.

use clap::{Args, Subcommand, ValueEnum};
use uuid::Uuid;

use super::exit::EXIT_CODES_HELP;

/// Where the node is, how to answer, and what to ask.
#[derive(Debug, Clone, Args)]
#[command(after_help = EXIT_CODES_HELP)]
pub struct Options {
    /// Base URL of the node's HTTP API (plain HTTP, as the node serves it).
    #[arg(long, global = true, env = "LOANFLOW_ADMIN_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Print the node's JSON answer as it is, for scripts, instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Give up on an answer after this many seconds.
    #[arg(long, global = true, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout_secs: u64,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// Loans: list, show one, the stuck ones, retry or cancel one.
    #[command(subcommand)]
    Loans(LoansCommand),
    /// Durable timers: information deadlines and reminders.
    Timers,
    /// Messages given up on, and replaying one after the fix.
    #[command(subcommand, name = "dead-letters")]
    DeadLetters(DeadLettersCommand),
    /// The nodes: each one's id, roles and live actors per kind.
    Nodes,
    /// The live actors of every node.
    Actors {
        /// Only actors of this kind.
        #[arg(long, value_enum)]
        kind: Option<ActorKindArg>,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum LoansCommand {
    /// Loans, newest first, one page (`--cursor` takes the next one).
    List {
        /// Only loans with this status.
        #[arg(long)]
        status: Option<String>,
        /// Page size, 1 to 500.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// `next_cursor` of the previous page.
        #[arg(long)]
        cursor: Option<Uuid>,
    },
    /// One loan, in full.
    Show { id: Uuid },
    /// Unfinished loans older than a threshold, the step each waits on and its pending messages.
    Stuck {
        /// Only loans submitted longer ago than this many seconds.
        #[arg(long, default_value_t = 60)]
        older_than_secs: u32,
        /// At most this many, oldest first (1 to 500).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Deliver a loan's pending messages again, now.
    Retry { id: Uuid },
    /// Cancel a loan as the operator: its completed steps are compensated, it ends `cancelled`.
    Cancel {
        id: Uuid,
        /// Sent as `Idempotency-Key`: the same key again answers as the first time.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum DeadLettersCommand {
    /// Dead letters, newest first (personal data redacted by the node).
    List {
        /// At most this many, 1 to 1000.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Put a dead letter back in the outbox and deliver it.
    Replay {
        /// The dead letter's message id.
        message_id: Uuid,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ActorKindArg {
    Loan,
    Credit,
    Appraisal,
    Notifier,
}

impl ActorKindArg {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKindArg::Loan => "loan",
            ActorKindArg::Credit => "credit",
            ActorKindArg::Appraisal => "appraisal",
            ActorKindArg::Notifier => "notifier",
        }
    }
}
