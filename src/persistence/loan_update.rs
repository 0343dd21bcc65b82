//! The one UPDATE a step makes to its loan, as a fixed statement diesel can keep prepared.
//! diesel never caches its own `UPDATE` statements (they mark themselves unsafe to cache), so
//! `diesel::update(..).set(row)` was parsed and prepared again for every step: the largest
//! single cost of the writer thread (docs/benchmarks.md). Only the columns a step can change are
//! written; the application's columns never change after the insert.

use chrono::NaiveDateTime;
use diesel::backend::Backend;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType, Integer, Nullable, Text, Timestamp};
use diesel::{QueryResult, RunQueryDsl};

use super::records::LoanRow;

/// `UPDATE loans SET <state columns> WHERE id = ? AND version = ?`: 0 rows = a version conflict.
pub struct UpdateLoanState<'a> {
    pub row: &'a LoanRow,
    pub expected_version: i64,
}

/// The statement cache's key: one shape, whatever the values.
pub struct UpdateLoanStateId;

impl QueryId for UpdateLoanState<'_> {
    type QueryId = UpdateLoanStateId;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<DB> QueryFragment<DB> for UpdateLoanState<'_>
where
    DB: Backend + HasSqlType<Text> + HasSqlType<BigInt>,
    String: ToSql<Text, DB>,
    i64: ToSql<BigInt, DB>,
    LoanRow: BindLoanState<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("UPDATE loans SET (");
        out.push_sql(&STATE_COLUMNS.join(", "));
        out.push_sql(") = (");
        self.row.push_state_values(&mut out)?;
        out.push_sql(") WHERE id = ");
        out.push_bind_param::<Text, _>(&self.row.id)?;
        out.push_sql(" AND version = ");
        out.push_bind_param::<BigInt, _>(&self.expected_version)?;
        Ok(())
    }
}

/// Binding the values of `STATE_COLUMNS` on a backend. A trait, so that the backend's `ToSql`
/// bounds are written once (a plain generic function would need them repeated at each caller).
pub(crate) trait BindLoanState<DB: Backend> {
    /// The values of `STATE_COLUMNS`, comma-separated binds.
    fn push_state_values<'b>(&'b self, out: &mut AstPass<'_, 'b, DB>) -> QueryResult<()>;
}

impl<DB> BindLoanState<DB> for LoanRow
where
    DB: Backend + HasSqlType<Text> + HasSqlType<BigInt> + HasSqlType<Integer> + HasSqlType<Timestamp>,
    String: ToSql<Text, DB>,
    i64: ToSql<BigInt, DB>,
    Option<i32>: ToSql<Nullable<Integer>, DB>,
    Option<i64>: ToSql<Nullable<BigInt>, DB>,
    Option<String>: ToSql<Nullable<Text>, DB>,
    NaiveDateTime: ToSql<Timestamp, DB>,
    Option<NaiveDateTime>: ToSql<Nullable<Timestamp>, DB>,
{
    fn push_state_values<'b>(&'b self, out: &mut AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_bind_param::<Text, _>(&self.status)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Integer>, _>(&self.credit_score)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<BigInt>, _>(&self.appraised_value_cents)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Integer>, _>(&self.rate_bps)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<BigInt>, _>(&self.monthly_payment_cents)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.saga)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.version)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.updated_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Timestamp>, _>(&self.decided_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Timestamp>, _>(&self.notified_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.waiting_on)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Timestamp>, _>(&self.waiting_since)
    }
}

impl<Conn> RunQueryDsl<Conn> for UpdateLoanState<'_> {}

/// PostgreSQL: the loan UPDATEs of a whole batch in one statement (one round trip instead of
/// one per unit): `WITH v(..) AS (VALUES (..), ..) UPDATE loans SET .. FROM v WHERE loans.id =
/// v.id AND loans.version = v.expected`. Fewer rows updated than given = some version conflict
/// (the writer then applies the units one by one). Not cached: its shape varies with the count.
pub struct UpdateLoanStates<'a> {
    pub rows: Vec<(&'a LoanRow, i64)>,
}

impl QueryId for UpdateLoanStates<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// The columns a step changes, in the order of the VALUES rows (then `id` and `expected`).
const STATE_COLUMNS: [&str; 12] = [
    "status",
    "credit_score",
    "appraised_value_cents",
    "rate_bps",
    "monthly_payment_cents",
    "saga",
    "version",
    "updated_at",
    "decided_at",
    "notified_at",
    "waiting_on",
    "waiting_since",
];

impl QueryFragment<diesel::pg::Pg> for UpdateLoanStates<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::pg::Pg>) -> QueryResult<()> {
        out.push_sql("WITH v (");
        out.push_sql(&STATE_COLUMNS.join(", "));
        out.push_sql(", id, expected) AS (VALUES ");
        for (i, (row, expected_version)) in self.rows.iter().enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            row.push_state_values(&mut out)?;
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(&row.id)?;
            out.push_sql(", ");
            out.push_bind_param::<BigInt, _>(expected_version)?;
            out.push_sql(")");
        }
        out.push_sql(") UPDATE loans SET ");
        let set: Vec<String> = STATE_COLUMNS.iter().map(|c| format!("{c} = v.{c}")).collect();
        out.push_sql(&set.join(", "));
        out.push_sql(" FROM v WHERE loans.id = v.id AND loans.version = v.expected");
        Ok(())
    }
}

impl<Conn> RunQueryDsl<Conn> for UpdateLoanStates<'_> {}
