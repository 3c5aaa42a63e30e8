//! Figure 5, second half: how close our replay comes to just decoding the events' JSON.

use std::time::Instant;

use es_core::{MemoryStore, Repository};

use crate::report::{median, Better, Row};
use crate::{ours, Settings};

pub async fn figure_5_decode(settings: &Settings) -> Vec<Row> {
    let length = settings.load_length;
    let repository = Repository::<ours::Account>::new(MemoryStore::new()).without_cache();
    let id = "replayed".to_owned();
    for _ in 0..length / 1000 {
        repository
            .execute(&id, ours::DepositMany { count: 1000 })
            .await
            .expect("fill");
    }
    let payloads: Vec<String> = (0..length).map(|_| r#"{"amount":1}"#.to_owned()).collect();
    let (mut replay_runs, mut decode_runs) = (Vec::new(), Vec::new());
    for _ in 0..settings.rounds.max(3) {
        let started = Instant::now();
        let loaded = repository.load(&id).await.expect("load");
        replay_runs.push(length as f64 / started.elapsed().as_secs_f64());
        assert_eq!(loaded.state.balance(), length);
        let started = Instant::now();
        let mut total = 0;
        for payload in &payloads {
            let event: ours::Deposited = serde_json::from_str(payload).expect("decode");
            total += event.amount;
        }
        decode_runs.push(length as f64 / started.elapsed().as_secs_f64());
        assert_eq!(total, length);
    }
    vec![Row::new(
        "5",
        format!("in memory: replay rate vs serde_json decoding, {length} events"),
        "events/s",
        Better::Higher,
    )
    .ours(median(replay_runs))
    .theirs(median(decode_runs))
    .against("serde_json alone")
    .note("ratio = our share of bare decoding")]
}
