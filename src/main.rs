use clap::Parser;
use loanflow::settings::{Settings, StaffToken};
use loanflow::startup::Application;
use loanflow::telemetry;

/// mimalloc: glibc malloc took ~15 % of the server's CPU under load (many small, short-lived
/// allocations across threads) and hands memory back to the OS poorly (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// With no subcommand, loanflow serves.
#[derive(Parser)]
#[command(name = "loanflow", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Ask a running node as its operator: loans, stuck loans, retry, cancel, timers, dead
    /// letters, nodes and actors (token from LOANFLOW__ADMIN__TOKEN).
    Admin(loanflow::admin_cli::Options),
    /// Submit generated applications to a running loanflow and report throughput, latency, CPU
    /// per loan and disagreements with the contract.
    Loadgen(loanflow::loadgen::Options),
    /// Make a random staff token: prints the token (give it to its holder) and the entry for
    /// `admin.staff_tokens` (only its SHA-256; put it in the configuration).
    Token {
        /// Who holds it (letters, digits, `-`, `_`, `.`): recorded with what they do.
        #[arg(long)]
        name: String,
        /// `viewer`, `underwriter` or `operator`.
        #[arg(long)]
        role: String,
    },
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Some(Command::Admin(options)) => std::process::exit(loanflow::admin_cli::main(options).await),
        Some(Command::Loadgen(options)) => std::process::exit(loanflow::loadgen::main(options).await),
        Some(Command::Token { name, role }) => match StaffToken::generate(&name, &role) {
            Ok((token, entry)) => {
                println!("token: {token}");
                println!("admin.staff_tokens entry: {entry}");
                return Ok(());
            }
            Err(err) => {
                eprintln!("loanflow token: {err}");
                std::process::exit(2);
            }
        },
        None => {}
    }
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("loanflow: {err}");
            std::process::exit(2);
        }
    };
    let export = match telemetry::OtlpExport::from_env() {
        Ok(export) => export,
        Err(err) => {
            eprintln!("loanflow: {err}");
            std::process::exit(2);
        }
    };
    telemetry::init_exporting(&settings.log, export.as_ref())?;
    let app = Application::build(settings).await?;
    let line = format!("listening on http://{}", app.address());
    tracing::info!(node_id = app.node_id(), "{line}");
    println!("{line}");
    if let Some(token) = app.generated_operator_token() {
        // Once, on standard error, outside the log: the log may be shipped elsewhere.
        eprintln!("loanflow: no admin.token is configured; this start's operator token is {token}");
        eprintln!("loanflow: sign in to the dashboard: http://{}/#token={token}", app.address());
    }
    app.run_until_stopped().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// clap's own check of the definition: clashing names or flags, bad defaults.
    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_serves_and_a_token_needs_a_name_and_a_role() {
        assert!(Cli::try_parse_from(["loanflow"]).unwrap().command.is_none());
        assert!(Cli::try_parse_from(["loanflow", "token", "--name", "ada"]).is_err());
        let parsed = Cli::try_parse_from(["loanflow", "token", "--name", "ada", "--role", "viewer"]).unwrap();
        assert!(matches!(parsed.command, Some(Command::Token { name, role }) if name == "ada" && role == "viewer"));
    }

    #[test]
    fn admin_commands_take_ids_that_are_ids() {
        let id = "01a225ec-8285-748a-a39c-8c3c9742c35e";
        assert!(Cli::try_parse_from(["loanflow", "admin", "loans", "show", id]).is_ok());
        assert!(Cli::try_parse_from(["loanflow", "admin", "--json", "loans", "retry", id]).is_ok());
        assert!(Cli::try_parse_from(["loanflow", "admin", "loans", "cancel", "../actors"]).is_err());
        assert!(Cli::try_parse_from(["loanflow", "admin", "dead-letters", "replay", "x"]).is_err());
        assert!(Cli::try_parse_from(["loanflow", "admin", "actors", "--kind", "bureau"]).is_err());
        assert!(Cli::try_parse_from(["loanflow", "admin", "nodes", "--url", "http://10.0.0.1:8080"]).is_ok());
    }
}
