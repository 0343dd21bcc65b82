//! Logging and tracing, set up once. Logs: human-readable by default, JSON with
//! `log.format = "json"`. Traces: exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set
//! ([`OtlpExport`]); unset, no tracing layer is installed at all and nothing of this costs.

mod export;
mod propagation;

pub use export::{shutdown, ExportError, OtlpExport, OtlpProtocol};
pub use propagation::{continue_trace, current_traceparent, exporting, traceparent_of};

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

use crate::settings::{LogFormat, LogSettings};

/// Logs only (what the tests that start several apps in one process use).
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (tests start several apps in one process) is harmless.
    let _ = match settings.format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Logs, and spans exported as `export` says (none: as [`init`]). The spans of loanflow's own
/// code are exported whatever the log level: the log's filter applies to the log only.
pub fn init_exporting(settings: &LogSettings, export: Option<&OtlpExport>) -> Result<(), ExportError> {
    let Some(export) = export else {
        init(settings);
        return Ok(());
    };
    let tracer = export::start(export)?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.level));
    let log = match settings.format {
        LogFormat::Json => {
            fmt::layer().json().flatten_event(true).with_current_span(true).with_writer(std::io::stderr).boxed()
        }
        LogFormat::Text => fmt::layer().with_writer(std::io::stderr).boxed(),
    };
    // Source locations, thread ids and levels as attributes cost every span and say little here.
    let spans = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_level(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_filter(Targets::new().with_target("loanflow", tracing::Level::INFO));
    let _ = tracing_subscriber::registry().with(log.with_filter(filter)).with(spans).try_init();
    Ok(())
}
