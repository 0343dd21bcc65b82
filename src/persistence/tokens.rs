//! Each loan's applicant-token generation: a token made for another generation is refused.

use diesel::prelude::*;

use super::connection::AnyConnection;
use super::schema::access_token_generations;
use super::StoreError;

/// The loan's current generation (0 until its token is first revoked).
pub fn generation(conn: &mut AnyConnection, loan_id: &str) -> Result<i64, StoreError> {
    let stored = access_token_generations::table
        .find(loan_id)
        .select(access_token_generations::generation)
        .first(conn)
        .optional()?;
    Ok(stored.unwrap_or(0))
}

/// Move the loan's generation from `from` to `to`; false if it was not at `from` any more (a
/// concurrent revocation won).
pub(super) fn advance(conn: &mut AnyConnection, loan_id: &str, from: i64, to: i64) -> QueryResult<bool> {
    use access_token_generations::dsl;
    let stored: Option<i64> =
        dsl::access_token_generations.find(loan_id).select(dsl::generation).first(conn).optional()?;
    match stored {
        None if from == 0 => {
            diesel::insert_into(dsl::access_token_generations)
                .values((dsl::loan_id.eq(loan_id), dsl::generation.eq(to)))
                .execute(conn)?;
            Ok(true)
        }
        Some(current) if current == from => {
            diesel::update(dsl::access_token_generations.find(loan_id)).set(dsl::generation.eq(to)).execute(conn)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}
