//! Claiming a timer on PostgreSQL: a row another transaction is firing is skipped at once
//! (`FOR UPDATE SKIP LOCKED`), never waited for, and is there again if that transaction fails.

use chrono::Utc;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::*;
use crate::domain::LoanId;
use crate::messages::{Envelope, MessageBody};
use crate::persistence::connection::{run_migrations, AnyConnection, Backend};
use crate::persistence::records::TimerRow;
use crate::persistence::schema::timers as timer_rows;

/// A fresh PostgreSQL database (`LOANFLOW_TEST_POSTGRES`, else the local server), dropped at the end.
struct Scratch {
    server: String,
    name: String,
}

impl Scratch {
    fn create() -> Self {
        let server =
            std::env::var("LOANFLOW_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
        let name = format!("loanflow_timers_{}", uuid::Uuid::new_v4().simple());
        let mut admin = diesel::PgConnection::establish(&format!("{server}/postgres?sslmode=disable")).unwrap();
        admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        Self { server, name }
    }

    fn connect(&self) -> AnyConnection {
        Backend::from_url(&format!("{}/{}?sslmode=disable", self.server, self.name)).connect().unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(mut admin) = diesel::PgConnection::establish(&format!("{}/postgres?sslmode=disable", self.server)) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

#[test]
fn a_timer_being_fired_elsewhere_is_skipped_without_waiting_and_fires_if_that_fails() {
    let scratch = Scratch::create();
    let (mut first, mut second) = (scratch.connect(), scratch.connect());
    run_migrations(&mut first).unwrap();
    let now = Utc::now().naive_utc();
    let fires = Envelope::new(LoanId::generate(), None, MessageBody::VoidAppraisal);
    let row = TimerRow::new(&fires, "information_deadline", "r".into(), now, now);
    diesel::insert_into(timer_rows::table).values(&row).execute(&mut first).unwrap();

    // The second connection would wait for the first one's lock without SKIP LOCKED: a short
    // lock timeout makes any wait an error instead of a hang.
    second.batch_execute("SET lock_timeout = '2s'").unwrap();
    first.batch_execute("BEGIN").unwrap();
    assert!(claim(&mut first, fires.message_id).unwrap(), "the first claim takes the row");
    assert!(!claim(&mut second, fires.message_id).unwrap(), "the row being fired is skipped, not waited for");
    first.batch_execute("ROLLBACK").unwrap();
    assert!(claim(&mut second, fires.message_id).unwrap(), "the failed firing left the row: it fires now");
    assert!(!claim(&mut first, fires.message_id).unwrap(), "and only once");
}
