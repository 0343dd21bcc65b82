use loanflow::settings::Settings;
use loanflow::startup::Application;
use loanflow::telemetry;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
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
    app.run_until_stopped().await?;
    Ok(())
}
