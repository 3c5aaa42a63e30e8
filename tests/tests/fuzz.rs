//! Property tests with a fixed number of cases: arbitrary bytes and arbitrary JSON fed to
//! event decoding and upcasting never panic; random command sequences on the blog's post give
//! the same results through the given/when/then fixture and through the repository.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use blog::post::{AddComment, ArchivePost, DraftPost, EditPost, Post, PostCommand, PublishPost};
use es_core::{Event, EventSet, GivenExt, MemoryStore, Payload, Repository, RolledBack};
use proptest::prelude::*;

type PostEvent = <Post as es_core::Aggregate>::Event;

fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        ".{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("author".to_owned()),
                    Just("title".to_owned()),
                    Just("content".to_owned()),
                    Just("body".to_owned()),
                    Just("tags".to_owned()),
                    Just("to_version".to_owned()),
                    "[a-z]{1,6}"
                ],
                inner,
                0..6
            )
            .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

fn event_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("post.drafted".to_owned()),
        Just("post.published".to_owned()),
        Just("post.edited".to_owned()),
        Just("post.commented".to_owned()),
        Just("post.archived".to_owned()),
        Just(RolledBack::NAME.to_owned()),
        ".{0,20}",
    ]
}

fn decode_everything(name: &str, schema_version: u32, payload: &Payload) {
    // Any outcome is fine; a panic or a hang is not.
    let _ = PostEvent::decode(name, schema_version, payload);
    let _ = RolledBack::decode(schema_version, payload);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(
        name in event_name(),
        schema_version in prop_oneof![0u32..4, any::<u32>()],
        bytes in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        decode_everything(&name, schema_version, &Payload::from_json_text(text));
    }

    #[test]
    fn decoding_and_upcasting_arbitrary_json_never_panics(
        name in event_name(),
        schema_version in prop_oneof![0u32..4, any::<u32>()],
        value in json(),
    ) {
        decode_everything(&name, schema_version, &Payload::encode(&value).unwrap());
    }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z ]{1,8}"]
}

fn command() -> impl Strategy<Value = PostCommand> {
    prop_oneof![
        (text(), text(), text()).prop_map(|(author, title, content)| PostCommand::from(
            DraftPost {
                author,
                title,
                content,
                tags: Vec::new()
            }
        )),
        Just(PostCommand::from(PublishPost)),
        (text(), text())
            .prop_map(|(title, content)| PostCommand::from(EditPost { title, content })),
        (text(), text()).prop_map(|(author, text)| PostCommand::from(AddComment { author, text })),
        text().prop_map(|reason| PostCommand::from(ArchivePost { reason })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn the_fixture_and_the_repository_agree_on_random_command_sequences(
        commands in prop::collection::vec(command(), 0..16),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let posts = Repository::<Post>::new(MemoryStore::new());
            let id = "p".to_owned();
            let mut history: Vec<PostEvent> = Vec::new();
            for command in commands {
                let expected = Post::given(history.clone()).when(command.clone());
                match (posts.execute(&id, command).await, expected.result()) {
                    (Ok(committed), Ok(events)) => {
                        let committed: Vec<PostEvent> = committed.into_iter().map(|e| e.event).collect();
                        prop_assert_eq!(&committed, events);
                        history.extend(committed);
                    }
                    (Err(error), Err(rejection)) => {
                        prop_assert_eq!(error.rejection(), Some(rejection));
                    }
                    (got, expected) => prop_assert!(false, "repository {got:?}, fixture {expected:?}"),
                }
            }
            let loaded = posts.load(&id).await.unwrap();
            prop_assert_eq!(loaded.version, history.len() as u64);
            Ok(())
        })?;
    }
}
