//! `GET /admin/timers`: the durable timers not fired yet, in due order, a page at a time.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::errors::{ApiError, Problem};
use super::state::AppState;
use crate::domain::rfc3339;
use crate::persistence::timers::{self, After, TimerKey};
use crate::persistence::TimerRow;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1_000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimersQuery {
    /// At most this many timers (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page (empty: the first page).
    cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimersPage {
    pub items: Vec<TimerView>,
    /// Pass as `cursor` for the next page; none on the last.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimerView {
    /// The timer's id (the id its message gets when it fires).
    pub id: String,
    pub loan_id: String,
    /// `information_deadline` or `information_reminder`.
    #[schema(example = "information_deadline")]
    pub kind: String,
    /// The request for information it belongs to.
    pub request_id: String,
    pub due_at: String,
    /// Seconds until it is due (negative: due, about to fire).
    pub due_in_seconds: f64,
}

/// The durable timers not fired yet, soonest first.
#[utoipa::path(
    get, path = "/admin/timers", tag = "admin", params(TimersQuery),
    responses(
        (status = 200, description = "A page of pending timers, soonest first", body = TimersPage),
        (status = 400, description = "Invalid parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong token", body = Problem, content_type = "application/problem+json",
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 503, description = "Database unavailable", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(query: web::Query<TimersQuery>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_parameter("limit", format!("must be an integer from 1 to {MAX_LIMIT}")));
    }
    let after = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => After::Start,
        Some(raw) => After::Key(
            parse_cursor(raw).ok_or_else(|| ApiError::bad_parameter("cursor", "is not a cursor this API returned"))?,
        ),
    };
    let mut rows = state.db.read(move |c| timers::pending(c, after, i64::from(limit) + 1)).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(|row| cursor(&row.key())) } else { None };
    let now = Utc::now().naive_utc();
    let items = rows.into_iter().map(|row| view(row, now)).collect();
    Ok(HttpResponse::Ok().json(TimersPage { items, next_cursor }))
}

fn view(row: TimerRow, now: NaiveDateTime) -> TimerView {
    TimerView {
        due_in_seconds: (row.due_at - now).num_milliseconds() as f64 / 1000.0,
        due_at: rfc3339(row.due_at),
        id: row.id,
        loan_id: row.loan_id,
        kind: row.kind,
        request_id: row.request_id,
    }
}

/// A page ends after a timer: its due time (microseconds since the epoch) and id.
fn cursor(key: &TimerKey) -> String {
    format!("{}_{}", key.due_at.and_utc().timestamp_micros(), key.id)
}

fn parse_cursor(raw: &str) -> Option<TimerKey> {
    let (micros, id) = raw.split_once('_')?;
    let due_at = DateTime::<Utc>::from_timestamp_micros(micros.parse().ok()?)?.naive_utc();
    (!id.is_empty()).then(|| TimerKey { due_at, id: id.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_names_the_timer_a_page_ended_with() {
        let due_at = DateTime::<Utc>::from_timestamp_micros(1_800_000_000_123_456).unwrap().naive_utc();
        let key = TimerKey { due_at, id: "0190-abc".into() };
        assert_eq!(parse_cursor(&cursor(&key)), Some(key));
        for bad in ["", "x_y", "123", "123_"] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
    }
}
