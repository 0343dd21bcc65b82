use clap::Parser;
use loanflow::settings::Settings;
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
    /// Submit generated applications to a running loanflow and report throughput, latency, CPU
    /// per loan and disagreements with the contract.
    Loadgen(loanflow::loadgen::Options),
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    if let Some(Command::Loadgen(options)) = Cli::parse().command {
        std::process::exit(loanflow::loadgen::main(options).await);
    }
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("loanflow: {err}");
            std::process::exit(2);
        }
    };
    telemetry::init(&settings.log);
    let app = Application::build(settings).await?;
    let line = format!("listening on http://{}", app.address());
    tracing::info!(node_id = app.node_id(), "{line}");
    println!("{line}");
    if let Some(token) = app.generated_operator_token() {
        // Once, on standard error, outside the log: the log may be shipped elsewhere.
        eprintln!("loanflow: no admin.token is configured; this start's operator token (Authorization: Bearer, /admin/*) is {token}");
    }
    app.run_until_stopped().await?;
    Ok(())
}
