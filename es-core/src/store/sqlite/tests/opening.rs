//! Opening: many openers of one new file at once, and files of another layout.

use std::sync::{Arc, Barrier};

use super::{events, layout_error, raw, stream, TempDir};
use crate::sqlite::{LayoutError, SqliteStore};
use crate::store::{EventLog, ExpectedVersion};

#[test]
fn eight_threads_can_open_one_new_file_at_once() {
    for round in 0..5 {
        let dir = TempDir::new("concurrent-open");
        let path = Arc::new(dir.file("store.db"));
        let openers = 8;
        let barrier = Arc::new(Barrier::new(openers));
        let threads: Vec<_> = (0..openers)
            .map(|opener| {
                let path = Arc::clone(&path);
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    runtime.block_on(async {
                        barrier.wait();
                        let store = SqliteStore::open(&*path).await?;
                        let own = stream("opener", &opener.to_string());
                        store
                            .append(&own, ExpectedVersion::NoStream, events(1))
                            .await
                    })
                })
            })
            .collect();
        for (opener, thread) in threads.into_iter().enumerate() {
            let result = thread.join().expect("the opener thread panicked");
            assert!(
                result.is_ok(),
                "round {round}, opener {opener}: {:?}",
                result.err()
            );
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let store = SqliteStore::open(&*path).await.unwrap();
            assert_eq!(store.head_position().await.unwrap(), openers as u64);
            let journal_mode: String = raw(&path)
                .query_row("PRAGMA journal_mode", [], |row| row.get(0))
                .unwrap();
            assert_eq!(journal_mode, "wal", "round {round}");
            assert_eq!(
                store
                    .read_aggregate_type("opener", 1, 100)
                    .await
                    .unwrap()
                    .len(),
                openers
            );
        });
    }
}

#[tokio::test]
async fn a_file_of_another_layout_is_refused_not_read() {
    let dir = TempDir::new("layout");

    let foreign = dir.file("foreign.db");
    raw(&foreign)
        .execute_batch("CREATE TABLE notes (text TEXT)")
        .unwrap();
    assert!(matches!(
        layout_error(SqliteStore::open(&foreign).await),
        LayoutError::Foreign {
            application_id: 0,
            user_version: 0,
            tables: 1
        }
    ));

    // What the unreleased es-core wrote: user_version 1, like layout 1, but no application id.
    let unreleased = dir.file("unreleased.db");
    raw(&unreleased)
        .execute_batch(
            "CREATE TABLE es_events (position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL); \
             PRAGMA user_version = 1;",
        )
        .unwrap();
    assert!(matches!(
        layout_error(SqliteStore::open(&unreleased).await),
        LayoutError::Foreign {
            user_version: 1,
            ..
        }
    ));

    let newer = dir.file("newer.db");
    drop(SqliteStore::open(&newer).await.unwrap());
    raw(&newer)
        .execute_batch("PRAGMA user_version = 4")
        .unwrap();
    assert!(matches!(
        layout_error(SqliteStore::open(&newer).await),
        LayoutError::Newer {
            found: 4,
            supported: 3
        }
    ));

    // The refusals wrote nothing: the foreign file is as it was.
    let tables: i64 = raw(&foreign)
        .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
        .unwrap();
    assert_eq!(tables, 1);
}
