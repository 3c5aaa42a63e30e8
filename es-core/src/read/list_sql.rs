//! The SQL a store with documents in tables (SQLite, PostgreSQL) lists a page with: the same
//! conditions and order in either dialect, only the placeholders differ.

use crate::read::store::ListQuery;

/// The column that holds the `n`th indexed field of a document table.
pub(crate) fn index_column(n: usize) -> String {
    format!("idx_{n}")
}

/// The ` WHERE …` part (empty without conditions) and the `ORDER BY` list of the statement
/// that reads a page of `query`. `placeholder(name)` makes the next parameter's placeholder;
/// it is asked, in the order the values are bound, for `value` (the filter's), then
/// `after_value` and `after_key` (the cursor with an order) or `after` (the key cursor).
pub(crate) fn page_clauses(
    query: &ListQuery,
    mut placeholder: impl FnMut(&str) -> String,
) -> (String, String) {
    let mut conditions = Vec::new();
    if let Some((index, _)) = &query.filter {
        let value = placeholder("value");
        conditions.push(format!("{} = {value}", index_column(*index)));
    }
    let order = match &query.order {
        // Row values compare as (value, key), which the field's index holds in that order.
        Some(order) => {
            let column = index_column(order.index);
            let (direction, past) = if order.descending {
                ("DESC", "<")
            } else {
                ("ASC", ">")
            };
            conditions.push(format!("{column} IS NOT NULL"));
            if order.after.is_some() {
                let (value, key) = (placeholder("after_value"), placeholder("after_key"));
                conditions.push(format!("({column}, key) {past} ({value}, {key})"));
            }
            format!("{column} {direction}, key {direction}")
        }
        None => {
            if query.after.is_some() {
                conditions.push(format!("key > {}", placeholder("after")));
            }
            "key".to_owned()
        }
    };
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    (filter, order)
}
