//! Published posts per tag: a SQL read model, the escape hatch for what documents do not
//! answer well (here a count grouped across posts). Its tables are its own, written in its
//! own SQL through the batch transaction the daemon gives it, on SQLite and PostgreSQL; the
//! memory store has no SQL, so the blog runs it only on the other two.
//!
//! A rollback returns a post to an earlier state, which SQL the runtime does not understand
//! cannot recompute by itself: so the projection keeps, per post, the published state after
//! each event that changed it, keyed by version, and a rollback deletes the versions after
//! the one it returns to.

use es_core::async_trait;
use es_core::sql::{self, SqlProjection, SqlTx, SqlValue};
use es_core::{BoxError, Event, ProjectionError, ReadStore, RecordedEvent, RolledBack};

use crate::post::{PostArchived, PostDrafted, PostPublished};

/// Published posts per tag.
#[derive(Debug, Default)]
pub struct TagCounts;

#[async_trait]
impl SqlProjection for TagCounts {
    const NAME: &'static str = "tag_counts";
    const VERSION: &'static str = "1";
    const EVENTS: &'static [&'static str] = &[
        PostDrafted::NAME,
        PostPublished::NAME,
        PostArchived::NAME,
        RolledBack::NAME,
    ];
    const TABLES: &'static [&'static str] = &["post_tags", "post_published"];

    async fn create_tables(&self, sql: &mut SqlTx<'_>) -> Result<(), BoxError> {
        sql.execute(
            "CREATE TABLE {post_tags} (post TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (post, tag))",
            &[],
        )
        .await?;
        // Per post, whether it is published after each version that changed that.
        sql.execute(
            "CREATE TABLE {post_published} (post TEXT NOT NULL, version BIGINT NOT NULL, published INTEGER NOT NULL, PRIMARY KEY (post, version))",
            &[],
        )
        .await?;
        Ok(())
    }

    async fn apply(&self, event: &RecordedEvent, sql: &mut SqlTx<'_>) -> Result<(), BoxError> {
        let post: SqlValue = event.aggregate_id().into();
        let version = SqlValue::try_from(event.version)?;
        let published = if let Some(drafted) = event.decode_as::<PostDrafted>()? {
            for tag in &drafted.tags {
                sql.execute(
                    "INSERT INTO {post_tags} (post, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    &[post.clone(), tag.into()],
                )
                .await?;
            }
            false
        } else if event.decode_as::<PostPublished>()?.is_some() {
            true
        } else if event.decode_as::<PostArchived>()?.is_some() {
            false
        } else if let Some(marker) = event.decode_as::<RolledBack>()? {
            sql.execute(
                "DELETE FROM {post_published} WHERE post = $1 AND version > $2",
                &[post, SqlValue::try_from(marker.to_version)?],
            )
            .await?;
            return Ok(());
        } else {
            return Ok(());
        };
        sql.execute(
            "INSERT INTO {post_published} (post, version, published) VALUES ($1, $2, $3)",
            &[post, version, i64::from(published).into()],
        )
        .await?;
        Ok(())
    }
}

/// Each tag with its number of published posts, most first.
pub async fn published_per_tag(
    store: &dyn ReadStore,
) -> Result<Vec<(String, i64)>, ProjectionError> {
    let rows = sql::query::<TagCounts>(
        store,
        "SELECT t.tag AS tag, count(*) AS posts
         FROM {post_tags} t
         JOIN {post_published} p ON p.post = t.post
         WHERE p.published = 1
           AND p.version = (SELECT max(version) FROM {post_published} WHERE post = t.post)
         GROUP BY t.tag
         ORDER BY posts DESC, t.tag",
        &[],
    )
    .await?;
    Ok((0..rows.len())
        .filter_map(|row| {
            let tag = rows.get(row, "tag")?.as_str()?.to_owned();
            let posts = rows.get(row, "posts")?.as_i64()?;
            Some((tag, posts))
        })
        .collect())
}
