//! How the store's statements run: planned once per connection, and through the index meant
//! for them.

use rusqlite::StatementStatus;

use super::fresh_store;
use crate::sqlite::{read, schema};

#[tokio::test]
async fn a_cached_statement_is_planned_once_whatever_it_is_bound_to() {
    let (dir, _store) = fresh_store("planned-once").await;
    let connection = schema::open_reader(&dir.store_path()).unwrap();
    // The shape of the store's stream reads: an equality on a bound value, then an order.
    let sql = "SELECT version FROM es_events WHERE stream_id = ?1 ORDER BY version DESC LIMIT 1";
    for stream in ["account/a", "account/b", "account/c"] {
        let mut statement = connection.prepare_cached(sql).unwrap();
        let rows: Vec<i64> = statement
            .query_map([stream], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(rows.is_empty());
    }
    let statement = connection.prepare_cached(sql).unwrap();
    assert_eq!(
        statement.get_status(StatementStatus::RePrepare),
        0,
        "binding another stream must not make SQLite parse and plan the statement again"
    );
}

#[tokio::test]
async fn looking_for_a_commands_events_uses_the_command_index() {
    let (dir, _store) = fresh_store("command-index").await;
    let connection = schema::open_reader(&dir.store_path()).unwrap();
    let plan: Vec<String> = connection
        .prepare(&format!(
            "EXPLAIN QUERY PLAN {}",
            read::command_events_sql()
        ))
        .unwrap()
        .query_map(
            ["00000000-0000-0000-0000-000000000000", "account/a"],
            |row| row.get(3),
        )
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        plan.iter()
            .any(|step| step.contains("USING INDEX es_events_by_command")),
        "not through the command index, so through the stream's whole history: {plan:?}"
    );
}
