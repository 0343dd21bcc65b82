//! A loan's trace across messages and nodes: a span's context as a W3C `traceparent` (stored in
//! the envelopes it sends), and a new span made a child of one. Without export every function
//! here returns at once: no span context is read or made.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::domain::TraceParent;

static EXPORTING: AtomicBool = AtomicBool::new(false);

pub(super) fn set_exporting() {
    EXPORTING.store(true, Ordering::Release);
}

/// Whether spans are exported (`OTEL_EXPORTER_OTLP_ENDPOINT` was set at start).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Acquire)
}

/// The `traceparent` of `span`: what a message it sends carries.
pub fn traceparent_of(span: &Span) -> Option<TraceParent> {
    if !exporting() {
        return None;
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    if !span_context.is_valid() {
        return None;
    }
    TraceParent::new(
        &span_context.trace_id().to_string(),
        &span_context.span_id().to_string(),
        span_context.trace_flags().to_u8(),
    )
}

/// The `traceparent` of the span the caller is in.
pub fn current_traceparent() -> Option<TraceParent> {
    traceparent_of(&Span::current())
}

/// Make `span` (just created, not yet entered) a child of `parent` (none: the root of a new
/// trace), and record its trace id in its `trace_id` field, for the log lines inside it.
pub fn continue_trace(span: &Span, parent: Option<&TraceParent>) {
    if !exporting() {
        return;
    }
    if let Some(parent) = parent.and_then(remote_context) {
        // Refused only for a span already entered or disabled: it keeps its own trace.
        let _ = span.set_parent(parent);
    }
    let trace_id = span.context().span().span_context().trace_id();
    if trace_id != TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
}

fn remote_context(parent: &TraceParent) -> Option<Context> {
    let span_context = SpanContext::new(
        TraceId::from_hex(parent.trace_id()).ok()?,
        SpanId::from_hex(parent.parent_id()).ok()?,
        TraceFlags::new(parent.flags()),
        true,
        TraceState::default(),
    );
    Some(Context::new().with_remote_span_context(span_context))
}
