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
        rabbitmqctl(&["set_permissions", "-p", &name, "guest", ".*", ".*", ".*"]);
        Vhost { name }
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
