//! Projections: discovery through inventory, feeding after commits, order and exactly-once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]


use es_tests::bank::*;
use es_tests::{counting, stores};
use es_core::{projection, Envelope, MemoryStore, Projections, Repository};

#[projection(name = "balances")]
#[derive(Debug, Default)]
pub struct Balances {
    pub total: u64,
    pub positions: Vec<u64>,
}

#[projection]
impl Balances {
    #[on]
    fn deposited(&mut self, event: &Envelope<Deposited>) {
        self.total += event.event.amount;
        self.positions.push(event.position);
    }

    #[on]
    fn withdrawn(&mut self, event: &Withdrawn) {
        self.total -= event.amount;
    }
}

#[test]
fn projections_declared_with_the_macro_are_discovered() {
    assert!(Projections::discover().names().contains(&"balances"));
}

#[tokio::test]
async fn projections_see_each_commit_once_and_in_position_order() {
    let store = MemoryStore::new();
    let projections = Projections::new().with(Balances::default());
    let accounts = Repository::<Account>::new(store.clone()).with_projections(projections.clone());
    let account = "a".to_owned();
    accounts
        .execute(
            &account,
            Open {
                owner: "ann".into(),
            },
        )
        .await
        .unwrap();
    accounts
        .execute(&account, Deposit { amount: 10 })
        .await
        .unwrap();
    accounts
        .execute(&account, Deposit { amount: 5 })
        .await
        .unwrap();
    accounts
        .execute(&account, Withdraw { amount: 3 })
        .await
        .unwrap();
    let (total, positions) = projections
        .query(|b: &Balances| (b.total, b.positions.clone()))
        .unwrap();
    assert_eq!((total, positions), (12, vec![2, 3]));
    // Catching up again reads nothing new and changes nothing.
    assert_eq!(projections.catch_up(&store).await.unwrap(), 0);
    assert_eq!(projections.query(|b: &Balances| b.total).unwrap(), 12);
}

#[tokio::test]
async fn a_new_projection_catches_up_on_history() {
    let store = MemoryStore::new();
    let accounts = Repository::<Account>::new(store.clone());
    accounts
        .execute(
            &"a".to_owned(),
            Open {
                owner: "ann".into(),
            },
        )
        .await
        .unwrap();
    accounts
        .execute(&"a".to_owned(), Deposit { amount: 4 })
        .await
        .unwrap();
    let late = Projections::new().with(Balances::default());
    assert_eq!(late.catch_up(&store).await.unwrap(), 2);
    assert_eq!(late.query(|b: &Balances| b.total).unwrap(), 4);
}

#[tokio::test]
async fn querying_an_unregistered_projection_is_an_error() {
    let projections = Projections::new();
    let error = projections.query(|b: &Balances| b.total).unwrap_err();
    assert!(error.to_string().contains("Balances"), "{error}");
}
