//! A fault's episode in the log: its lines counted with a subscriber that keeps them.

use std::sync::{Arc, Mutex};

use super::*;

/// The log lines written while `f` runs.
fn logged(f: impl FnOnce()) -> Vec<String> {
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
    tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    text.lines().map(str::to_owned).collect()
}

#[test]
fn a_lasting_fault_logs_its_start_a_summary_every_ten_seconds_and_its_end() {
    let log = FaultLog::new("commits");
    let start = Instant::now();
    let lines = logged(|| {
        // 30 s of failures, 100 a second.
        for i in 0..3_000u64 {
            log.failed_at(&"disk full", start + Duration::from_millis(i * 10));
        }
        log.succeeded();
        log.succeeded();
    });
    assert_eq!(lines.len(), 1 + 2 + 1, "{lines:#?}");
    assert!(lines[0].contains("commits failing") && lines[0].contains("disk full"), "{lines:#?}");
    assert!(lines[1].contains("still failing") && lines[1].contains("failures=1000"), "{lines:#?}");
    assert!(lines[3].contains("succeed again") && lines[3].contains("failures=3000"), "{lines:#?}");
}

#[test]
fn failing_until_a_success_or_a_quiet_while() {
    let log = FaultLog::new("commits");
    let start = Instant::now();
    assert!(!log.is_failing_at(start));
    logged(|| log.failed_at(&"locked", start));
    assert!(log.is_failing_at(start + Duration::from_secs(1)));
    assert!(!log.is_failing_at(start + FAILING_FOR), "no failure for a while says nothing about now");
    logged(|| log.succeeded());
    assert!(!log.is_failing_at(start + Duration::from_secs(1)));
}
