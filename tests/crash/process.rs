//! The real `loanflow` binary as a child process: started with environment overrides, its
//! address read from its output, killed with SIGKILL, and always reaped (also when a test fails).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the binary may take to print its address.
const STARTUP_DEADLINE: Duration = Duration::from_secs(30);
const MARKER: &str = "listening on http://";

/// A running `loanflow`; dropping it kills the process.
pub struct Service {
    child: Child,
    /// `http://ADDR:PORT`
    pub base_url: String,
    output: Arc<Mutex<Vec<String>>>,
}

impl Service {
    /// Start the binary with `env` on top of the inherited environment (so `RUST_LOG` reaches it)
    /// and wait for the line that gives its address.
    pub fn start(env: &[(&str, String)]) -> Service {
        let mut command = Command::new(env!("CARGO_BIN_EXE_loanflow"));
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).env("NO_COLOR", "1");
        // The rules decide every loan (no underwriter in these tests) unless `env` says otherwise.
        command.env("LOANFLOW__DECISION__REVIEW_BELOW_SCORE", "0");
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("starting the loanflow binary");
        let output = Arc::new(Mutex::new(Vec::new()));
        let (address_tx, address_rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        collect_lines(stdout, output.clone(), address_tx.clone());
        collect_lines(stderr, output.clone(), address_tx);
        let mut service = Service { child, base_url: String::new(), output };
        match address_rx.recv_timeout(STARTUP_DEADLINE) {
            Ok(address) => service.base_url = format!("http://{address}"),
            Err(_) => {
                panic!("loanflow printed no `{MARKER}` line within {STARTUP_DEADLINE:?}:\n{}", service.log_tail(40))
            }
        }
        service
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `kill -9` (std's `Child::kill` sends SIGKILL on Unix), then reap the process.
    #[allow(dead_code)]
    pub fn kill_9(mut self) {
        self.child.kill().expect("sending SIGKILL to loanflow");
        let status = self.child.wait().expect("reaping loanflow");
        assert!(!status.success(), "loanflow exited cleanly instead of being killed: {status}");
    }

    /// SIGTERM, then wait for the process to exit by itself; returns how long that took.
    #[allow(dead_code)]
    pub fn terminate(mut self, deadline: Duration) -> Duration {
        let started = std::time::Instant::now();
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("running kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        while started.elapsed() < deadline {
            if let Some(status) = self.child.try_wait().expect("polling loanflow") {
                assert!(status.success(), "loanflow exited with {status} after SIGTERM:\n{}", self.log_tail(30));
                return started.elapsed();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("loanflow still running {deadline:?} after SIGTERM:\n{}", self.log_tail(30));
    }

    /// Whether the process has ended by itself (reaped if so).
    #[allow(dead_code)]
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Every line of output so far.
    #[allow(dead_code)]
    pub fn log_lines(&self) -> Vec<String> {
        self.output.lock().expect("output lock").clone()
    }

    /// The last `lines` lines of output, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let output = self.output.lock().expect("output lock");
        output[output.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // Already dead after `kill_9`; then both calls fail harmlessly.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Keep reading one output stream on its own thread (a full pipe would block the child), keep
/// the lines, and report the address from the first line that carries it.
fn collect_lines(stream: impl Read + Send + 'static, output: Arc<Mutex<Vec<String>>>, address: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some(found) = address_in(&line) {
                let _ = address.send(found);
            }
            output.lock().expect("output lock").push(line);
        }
    });
}

fn address_in(line: &str) -> Option<String> {
    let rest = &line[line.find(MARKER)? + MARKER.len()..];
    let address: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || ".:[]".contains(*c)).collect();
    address.contains(':').then_some(address)
}

#[test]
fn the_address_is_read_from_the_log_line() {
    assert_eq!(address_in("listening on http://127.0.0.1:41234").as_deref(), Some("127.0.0.1:41234"));
    assert_eq!(
        address_in("2026-01-01T00:00:00Z  INFO loanflow: listening on http://[::1]:8080 node_id=\"a\"").as_deref(),
        Some("[::1]:8080")
    );
    assert_eq!(address_in("starting"), None);
}
