//! CPU time and peak memory of the processes under test, read from `/proc` (Linux only; elsewhere
//! every figure is simply absent).
//!
//! CPU is `utime + stime` of `/proc/<pid>/stat` (all threads of the process), in clock ticks.
//! PostgreSQL (`postgres`) and RabbitMQ (`beam.smp`) processes count only when the server holds
//! a TCP connection to a port they listen on; all of their processes count then, including work
//! they do for other clients at the same time.
//! `libc` is not a dependency of loanflow, so `sysconf(_SC_CLK_TCK)` is not called: the tick is
//! taken as 100 per second, which is what Linux reports on every common architecture
//! (`getconf CLK_TCK`).

use std::collections::{BTreeMap, HashSet};
use std::fs;

use serde::Serialize;

/// Clock ticks per second of `/proc/<pid>/stat` (assumed; see the module docs).
pub const CLOCK_TICKS_PER_SECOND: u64 = 100;

/// The processes whose CPU the report accounts for, by role.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Processes {
    pub server: Vec<u32>,
    pub postgres: Vec<u32>,
    pub rabbitmq: Vec<u32>,
    pub loadgen: Vec<u32>,
}

impl Processes {
    /// Find the stack: the given server pids, or else the `loanflow` process listening on
    /// `port` (or, failing that, every `loanflow` process but this one); every `postgres` and
    /// `beam.smp` process; and this process itself.
    pub fn discover(server_pids: &[u32], port: Option<u16>) -> Self {
        let me = std::process::id();
        let by_name = processes_by_name();
        let named = |name: &str| by_name.get(name).cloned().unwrap_or_default();
        let server = if !server_pids.is_empty() {
            server_pids.to_vec()
        } else {
            let candidates: Vec<u32> = named("loanflow").into_iter().filter(|pid| *pid != me).collect();
            let listening = port.map(|port| listening_pids(&candidates, port)).unwrap_or_default();
            if listening.is_empty() {
                candidates
            } else {
                listening
            }
        };
        // PostgreSQL and RabbitMQ count only when the server talks to them: on a shared machine
        // they may be running for someone else while the server runs on SQLite.
        let table = tcp_table();
        let used = |pids: Vec<u32>| if talks_to(&table, &server, &pids) { pids } else { Vec::new() };
        Self {
            server: server.clone(),
            postgres: used(named("postgres")),
            rabbitmq: used(named("beam.smp")),
            loadgen: vec![me],
        }
    }
}

impl Processes {
    /// Every pid of every role.
    pub fn all(&self) -> Vec<u32> {
        [&self.server, &self.postgres, &self.rabbitmq, &self.loadgen].into_iter().flatten().copied().collect()
    }

    /// The processes of both discoveries (the server's stay those of `self`).
    pub fn merge(mut self, later: Processes) -> Self {
        for (mine, theirs) in [(&mut self.postgres, later.postgres), (&mut self.rabbitmq, later.rabbitmq)] {
            mine.extend(theirs);
            mine.sort_unstable();
            mine.dedup();
        }
        self
    }
}

/// One line of `/proc/net/tcp{,6}`.
struct TcpEntry {
    local_port: u16,
    remote_port: u16,
    listening: bool,
    inode: String,
}

fn tcp_table() -> Vec<TcpEntry> {
    let port = |address: &str| address.rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
    let mut entries = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else { continue };
        // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(remote), Some(state), Some(inode)) =
                (fields.get(1), fields.get(2), fields.get(3), fields.get(9))
            else {
                continue;
            };
            let (Some(local_port), Some(remote_port)) = (port(local), port(remote)) else { continue };
            entries.push(TcpEntry { local_port, remote_port, listening: *state == "0A", inode: (*inode).to_owned() });
        }
    }
    entries
}

/// The inodes of the sockets `pids` hold open.
fn socket_inodes(pids: &[u32]) -> HashSet<String> {
    let mut inodes = HashSet::new();
    for pid in pids {
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else { continue };
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else { continue };
            let target = target.to_string_lossy();
            if let Some(inode) = target.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                inodes.insert(inode.to_owned());
            }
        }
    }
    inodes
}

/// Whether one of `clients` has a TCP connection to a port one of `servers` listens on.
fn talks_to(table: &[TcpEntry], clients: &[u32], servers: &[u32]) -> bool {
    if clients.is_empty() || servers.is_empty() {
        return false;
    }
    let (client_inodes, server_inodes) = (socket_inodes(clients), socket_inodes(servers));
    let ports: HashSet<u16> =
        table.iter().filter(|e| e.listening && server_inodes.contains(&e.inode)).map(|e| e.local_port).collect();
    table.iter().any(|e| !e.listening && client_inodes.contains(&e.inode) && ports.contains(&e.remote_port))
}

/// CPU ticks used so far by each process (absent if it is gone).
#[derive(Debug, Clone, Default)]
pub struct CpuSnapshot(BTreeMap<u32, u64>);

impl CpuSnapshot {
    pub fn take(pids: &[u32]) -> Self {
        Self(pids.iter().filter_map(|pid| cpu_ticks(*pid).map(|t| (*pid, t))).collect())
    }

    /// Seconds of CPU between `earlier` and `self` over `pids`. A process that appeared in
    /// between counts from zero; one that vanished counts for nothing (a short-lived PostgreSQL
    /// backend can be missed: the figure is then a lower bound).
    pub fn seconds_since(&self, earlier: &CpuSnapshot, pids: &[u32]) -> f64 {
        let ticks: u64 = pids
            .iter()
            .filter_map(|pid| Some(self.0.get(pid)?.saturating_sub(earlier.0.get(pid).copied().unwrap_or(0))))
            .sum();
        ticks as f64 / CLOCK_TICKS_PER_SECOND as f64
    }
}

/// `utime + stime` of one process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: count fields after the last ')'.
    // There, field 0 is the state (field 3 of stat(5)), so utime (14) and stime (15) are 11, 12.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Peak resident set (`VmHWM`) of one process, in bytes.
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Every process by its command name (`/proc/<pid>/comm`, at most 15 bytes).
fn processes_by_name() -> BTreeMap<String, Vec<u32>> {
    let mut by_name: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let Ok(entries) = fs::read_dir("/proc") else { return by_name };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if let Ok(comm) = fs::read_to_string(format!("/proc/{pid}/comm")) {
            by_name.entry(comm.trim_end().to_owned()).or_default().push(pid);
        }
    }
    by_name
}

/// Those of `candidates` that hold a TCP socket listening on `port`.
fn listening_pids(candidates: &[u32], port: u16) -> Vec<u32> {
    let table = tcp_table();
    let listening: HashSet<&str> =
        table.iter().filter(|e| e.listening && e.local_port == port).map(|e| e.inode.as_str()).collect();
    if listening.is_empty() {
        return Vec::new();
    }
    candidates
        .iter()
        .copied()
        .filter(|pid| socket_inodes(&[*pid]).iter().any(|inode| listening.contains(inode.as_str())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_a_peak_rss() {
        let me = std::process::id();
        assert!(cpu_ticks(me).is_some());
        assert!(peak_rss_bytes(me).unwrap_or(0) > 0);
    }

    #[test]
    fn a_listening_socket_is_found_by_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        assert_eq!(listening_pids(&[std::process::id()], port), [std::process::id()]);
    }

    #[test]
    fn a_connection_to_a_listener_is_seen() {
        let me = [std::process::id()];
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let _client = std::net::TcpStream::connect(listener.local_addr().expect("address")).expect("connect");
        assert!(talks_to(&tcp_table(), &me, &me));
    }
}
