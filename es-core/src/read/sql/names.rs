//! Table names in a SQL projection's statements: `{name}` becomes the generation's table.

use crate::error::StoreError;
use crate::read::sql::value::{SqlRows, SqlValue};
use crate::read::sql::SqlExecutor;

/// What a SQL projection's handlers write through: the batch transaction, with `{name}` in a
/// statement resolved to this generation's table `name`.
pub struct SqlTx<'t> {
    executor: &'t mut dyn SqlExecutor,
    tables: &'static [&'static str],
    generation: u32,
}

impl std::fmt::Debug for SqlTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlTx")
            .field("tables", &self.tables)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl<'t> SqlTx<'t> {
    pub(crate) fn new(
        executor: &'t mut dyn SqlExecutor,
        tables: &'static [&'static str],
        generation: u32,
    ) -> Self {
        SqlTx {
            executor,
            tables,
            generation,
        }
    }

    /// Runs one statement; `$1`, `$2`, ... are `params`.
    pub async fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<(), StoreError> {
        let sql = self.resolve(sql);
        self.executor.execute(&sql, params).await
    }

    /// Runs one query; `$1`, `$2`, ... are `params`.
    pub async fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<SqlRows, StoreError> {
        let sql = self.resolve(sql);
        self.executor.query(&sql, params).await
    }

    /// The generation being written: 1 at first, one more with every rebuild.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    fn resolve(&self, sql: &str) -> String {
        let executor = &*self.executor;
        resolve(sql, self.tables, self.generation, &|name| {
            Some(executor.table_name(name))
        })
        .unwrap_or_else(|| sql.to_owned())
    }
}

/// The table of generation `generation` of table `name`.
pub(crate) fn generation_table(name: &str, generation: u32) -> String {
    format!("{name}__g{generation}")
}

/// `{gen}` in a statement: the generation's number, for names a database wants unique that
/// are not tables (indexes: `CREATE INDEX movements_by_account_{gen} ON {movements} ...`).
pub(crate) const GENERATION: &str = "gen";

/// `sql` with each `{name}` of `tables` replaced by the quoted name of generation
/// `generation`'s table, and `{gen}` by its number; `None` when `quote` has no SQL to offer.
/// Braces around anything else are left as they are.
pub(crate) fn resolve(
    sql: &str,
    tables: &[&str],
    generation: u32,
    quote: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let named = after
            .find('}')
            .map(|close| &after[..close])
            .filter(|name| *name == GENERATION || tables.contains(name));
        match named {
            Some(GENERATION) => {
                out.push_str(&generation.to_string());
                rest = &after[GENERATION.len() + 1..];
            }
            Some(name) => {
                out.push_str(&quote(&generation_table(name, generation))?);
                rest = &after[name.len() + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Some(out)
}

/// A lowercase ASCII identifier of at most 40 characters: safe in any table name the runtime
/// makes from it, on every database, without quoting surprises.
pub(crate) fn plain_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Whether `name` can be a SQL projection's table: a lowercase identifier of at most 40
/// characters, not the runtime's (`es_...`), without `__` (which generations use).
pub(crate) fn valid_table(name: &str) -> bool {
    plain_identifier(name) && !name.starts_with("es_") && !name.contains("__") && name != GENERATION
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(name: &str) -> Option<String> {
        Some(format!("\"{name}\""))
    }

    #[test]
    fn names_in_braces_become_the_generations_tables() {
        let sql = "INSERT INTO {titles} SELECT * FROM {tags} WHERE x = '{other}' AND y = '{'";
        assert_eq!(
            resolve(sql, &["titles", "tags"], 3, &quoted).unwrap(),
            "INSERT INTO \"titles__g3\" SELECT * FROM \"tags__g3\" WHERE x = '{other}' AND y = '{'"
        );
        assert_eq!(
            resolve(
                "CREATE INDEX by_tag_{gen} ON {tags} (tag)",
                &["tags"],
                2,
                &quoted
            )
            .unwrap(),
            "CREATE INDEX by_tag_2 ON \"tags__g2\" (tag)"
        );
        assert_eq!(resolve("{titles}", &["titles"], 1, &|_| None), None);
    }

    #[test]
    fn table_names_are_plain_identifiers_of_their_own() {
        for good in ["titles", "post_tags", "t2"] {
            assert!(valid_table(good), "{good}");
        }
        for bad in [
            "",
            "Titles",
            "2t",
            "es_events",
            "a__b",
            "a-b",
            "a b",
            &"x".repeat(41),
        ] {
            assert!(!valid_table(bad), "{bad}");
        }
    }
}
