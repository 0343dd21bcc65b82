//! A W3C `traceparent` (https://www.w3.org/TR/trace-context/#traceparent-header): which trace a
//! piece of work belongs to and which span caused it. It travels with a loan's messages so that
//! every step, on whichever node, joins the loan's trace.

use serde::{Deserialize, Serialize};

/// `version-traceid-parentid-flags`, e.g. `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TraceParent(String);

impl TraceParent {
    /// A well-formed `traceparent` of version 00 with a non-zero trace and parent id; anything
    /// else is `None` (a trace context that cannot be continued starts a new trace).
    pub fn parse(value: &str) -> Option<Self> {
        let parts: Vec<&str> = value.trim().split('-').collect();
        let [version, trace_id, parent_id, flags] = parts.as_slice() else { return None };
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let non_zero = |s: &str| s.bytes().any(|b| b != b'0');
        let well_formed = *version == "00"
            && hex(trace_id, 32)
            && non_zero(trace_id)
            && hex(parent_id, 16)
            && non_zero(parent_id)
            && hex(flags, 2);
        well_formed.then(|| Self(parts.join("-")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The trace's id (32 hex digits).
    pub fn trace_id(&self) -> &str {
        &self.0[3..35]
    }

    /// The id of the span that caused the work (16 hex digits).
    pub fn parent_id(&self) -> &str {
        &self.0[36..52]
    }

    /// The trace flags (bit 0: sampled).
    pub fn flags(&self) -> u8 {
        u8::from_str_radix(&self.0[53..55], 16).unwrap_or(0)
    }

    /// The `traceparent` of span `parent_id` in trace `trace_id` (hex, as [`TraceParent::parse`]
    /// takes them).
    pub fn new(trace_id: &str, parent_id: &str, flags: u8) -> Option<Self> {
        Self::parse(&format!("00-{trace_id}-{parent_id}-{flags:02x}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_well_formed_traceparent_is_taken() {
        let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parsed = TraceParent::parse(value).unwrap();
        assert_eq!(parsed.as_str(), value);
        assert_eq!(parsed.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!((parsed.parent_id(), parsed.flags()), ("00f067aa0ba902b7", 1));
        assert_eq!(TraceParent::new(parsed.trace_id(), parsed.parent_id(), 1), Some(parsed));
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }
}
