//! A RabbitMQ vhost of its own per test (created and deleted with rabbitmqctl), and stopping the
//! broker's application for the tests that need it to go away.

use std::process::Command;

pub struct Vhost {
    pub name: String,
}

fn rabbitmqctl(args: &[&str]) {
    let output = Command::new("rabbitmqctl").args(args).output().expect("rabbitmqctl must be installed");
    assert!(output.status.success(), "rabbitmqctl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

impl Vhost {
    pub fn create() -> Vhost {
        let name = format!("loanflow-test-{}", uuid::Uuid::new_v4().simple());
        rabbitmqctl(&["add_vhost", &name]);
        let vhost = Vhost { name };
        vhost.open();
        vhost
    }

    /// Refuse the tests' user (the nodes cannot connect) until [`Vhost::open`].
    pub fn close(&self) {
        rabbitmqctl(&["clear_permissions", "-p", &self.name, "guest"]);
    }

    pub fn open(&self) {
        rabbitmqctl(&["set_permissions", "-p", &self.name, "guest", ".*", ".*", ".*"]);
    }

    /// Messages ready and unacknowledged in each of the vhost's queues.
    pub fn queue_depths(&self) -> std::collections::HashMap<String, (u64, u64)> {
        let args = ["list_queues", "-q", "-p", &self.name, "name", "messages_ready", "messages_unacknowledged"];
        let output = Command::new("rabbitmqctl").args(args).output().expect("rabbitmqctl must be installed");
        assert!(output.status.success(), "rabbitmqctl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let name = fields.next()?.to_owned();
                let ready = fields.next()?.parse().ok()?;
                let unacked = fields.next()?.parse().ok()?;
                Some((name, (ready, unacked)))
            })
            .collect()
    }

    pub fn url(&self) -> String {
        let server =
            std::env::var("LOANFLOW_TEST_RABBITMQ").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672".into());
        format!("{server}/{}", self.name)
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl").args(["delete_vhost", &self.name]).output();
    }
}

pub fn stop_app() {
    rabbitmqctl(&["stop_app"]);
}

pub fn start_app() {
    rabbitmqctl(&["start_app"]);
    rabbitmqctl(&["await_startup"]);
}

/// Close every client connection of the vhost (the nodes reconnect by themselves).
pub fn close_connections(vhost: &str) {
    rabbitmqctl(&["close_all_connections", "--vhost", vhost, "loanflow test: a broker outage"]);
}
