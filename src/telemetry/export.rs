//! OTLP export of spans over HTTP, configured by the standard variables:
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (the collector's base URL; spans go to `/v1/traces` under it;
//! unset or empty: no export) and `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf`, the default,
//! or `http/json`). The SDK's batch processor takes finished spans into a bounded queue
//! (`OTEL_BSP_MAX_QUEUE_SIZE`, 2,048 by default) without waiting, drops (and counts) what does
//! not fit, and exports from its own thread: a slow or absent collector never holds up a step.
//! Sampling follows the standard `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`.

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;

/// How spans are encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    HttpProtobuf,
    HttpJson,
}

/// Where and how spans are exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpExport {
    /// The full URL spans are posted to (`.../v1/traces`).
    pub traces_url: String,
    pub protocol: OtlpProtocol,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("OTEL_EXPORTER_OTLP_PROTOCOL is {0:?}: this build exports over http/protobuf or http/json")]
    UnsupportedProtocol(String),
    #[error("OTEL_EXPORTER_OTLP_ENDPOINT is {0:?}: an http:// URL is needed (this build's exporter has no TLS: reach a collector over https through a local agent)")]
    UnsupportedEndpoint(String),
    #[error("the OTLP exporter could not be built")]
    Build(#[source] opentelemetry_otlp::ExporterBuildError),
}

impl OtlpExport {
    /// From the process's environment; `None` when no endpoint is set.
    pub fn from_env() -> Result<Option<Self>, ExportError> {
        let var = |name| std::env::var(name).ok();
        Self::from_values(var("OTEL_EXPORTER_OTLP_ENDPOINT"), var("OTEL_EXPORTER_OTLP_PROTOCOL"))
    }

    fn from_values(endpoint: Option<String>, protocol: Option<String>) -> Result<Option<Self>, ExportError> {
        let Some(endpoint) = endpoint.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty()) else { return Ok(None) };
        let protocol = match protocol.as_deref().map(str::trim) {
            None | Some("") | Some("http/protobuf") => OtlpProtocol::HttpProtobuf,
            Some("http/json") => OtlpProtocol::HttpJson,
            Some(other) => return Err(ExportError::UnsupportedProtocol(other.to_owned())),
        };
        let rest = endpoint.strip_prefix("http://").filter(|rest| !rest.is_empty() && !rest.starts_with('/'));
        if rest.is_none() {
            return Err(ExportError::UnsupportedEndpoint(endpoint));
        }
        let traces_url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        Ok(Some(Self { traces_url, protocol }))
    }
}

/// The provider whose batch processor holds the spans not exported yet.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Start exporting; the tracer the tracing layer hands finished spans to.
pub(super) fn start(export: &OtlpExport) -> Result<SdkTracer, ExportError> {
    let protocol = match export.protocol {
        OtlpProtocol::HttpProtobuf => Protocol::HttpBinary,
        OtlpProtocol::HttpJson => Protocol::HttpJson,
    };
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_endpoint(export.traces_url.clone())
        .build()
        .map_err(ExportError::Build)?;
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        .with_resource(Resource::builder().with_service_name("loanflow").build())
        .build();
    let tracer = provider.tracer("loanflow");
    if PROVIDER.set(provider).is_ok() {
        super::propagation::set_exporting();
    }
    Ok(tracer)
}

/// Export what is queued and stop, within `within` (the node's last part of its shutdown grace).
/// The processor's thread does the work; this waits for it off the async threads.
pub async fn shutdown(within: Duration) {
    let Some(provider) = PROVIDER.get() else { return };
    let provider = provider.clone();
    let flushed = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(within)).await;
    match flushed {
        Ok(Ok(())) => tracing::debug!("spans exported"),
        Ok(Err(err)) => tracing::warn!(error = %err, "spans not all exported at shutdown"),
        Err(err) => tracing::warn!(error = %err, "exporting spans at shutdown failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(endpoint: Option<&str>, protocol: Option<&str>) -> Result<Option<OtlpExport>, ExportError> {
        OtlpExport::from_values(endpoint.map(str::to_owned), protocol.map(str::to_owned))
    }

    #[test]
    fn no_endpoint_means_no_export_and_the_protocol_is_one_of_the_two_http_ones() {
        assert!(from(None, Some("http/json")).unwrap().is_none());
        assert!(from(Some(" "), None).unwrap().is_none());
        let export = from(Some("http://collector:4318/"), None).unwrap().unwrap();
        assert_eq!(export.traces_url, "http://collector:4318/v1/traces");
        assert_eq!(export.protocol, OtlpProtocol::HttpProtobuf);
        let json = from(Some("http://127.0.0.1:4318/base"), Some("http/json")).unwrap().unwrap();
        assert_eq!(
            (json.traces_url.as_str(), json.protocol),
            ("http://127.0.0.1:4318/base/v1/traces", OtlpProtocol::HttpJson)
        );
        assert!(
            matches!(from(Some("http://c:4317"), Some("grpc")), Err(ExportError::UnsupportedProtocol(p)) if p == "grpc")
        );
        for endpoint in ["https://collector:4318", "collector:4318", "http://"] {
            assert!(matches!(from(Some(endpoint), None), Err(ExportError::UnsupportedEndpoint(_))), "{endpoint}");
        }
    }
}
