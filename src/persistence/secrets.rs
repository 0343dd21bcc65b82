//! Secrets every node of a deployment shares, kept in the database: the first start that needs
//! one makes it, every later start (of any node) reads the same.

use diesel::prelude::*;

use super::connection::AnyConnection;
use super::schema::server_secrets;
use super::StoreError;

/// The secret named `name`, made with `fresh` if there is none yet. Two nodes starting at once
/// both read the one that was stored first.
pub fn load_or_create(
    conn: &mut AnyConnection,
    name: &str,
    fresh: impl FnOnce() -> String,
) -> Result<String, StoreError> {
    let value = fresh();
    let inserted = match conn {
        AnyConnection::Postgresql(c) => {
            diesel::sql_query("INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                .bind::<diesel::sql_types::Text, _>(name)
                .bind::<diesel::sql_types::Text, _>(&value)
                .execute(c)
        }
        AnyConnection::Sqlite(c) => {
            diesel::sql_query("INSERT INTO server_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
                .bind::<diesel::sql_types::Text, _>(name)
                .bind::<diesel::sql_types::Text, _>(&value)
                .execute(c)
        }
    };
    inserted?;
    Ok(server_secrets::table.find(name).select(server_secrets::value).first(conn)?)
}
