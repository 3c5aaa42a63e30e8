//! Process managers in real processes: a child running the `order_fulfilment` process manager
//! is killed with SIGKILL at random moments while orders keep arriving (at least 20 cycles,
//! `ES_CRASH_CYCLES` for more), on each durable store; and two instances of it on PostgreSQL,
//! one standing by while the other works, then taking over when the other is killed, and
//! still standing by while the other spends longer than a lease firing deadlines.
//! Afterwards every order was shipped exactly once, every order not cancelled was reminded
//! exactly once, and no cancelled order was ever reminded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use es_core::{
    DocumentTable, Event, EventLog, EventLogExt, ExpectedVersion, GenerationStatus, HealthState,
    ListQuery, Metadata, NewEvent, Payload, ReadStore, Store, StreamId,
};
use es_tests::child::ReportingChild;
use es_tests::process::{
    self, OrderCancelled, OrderPlaced, OrderReminded, Shipped, CHECKPOINT_TABLE,
};
use es_tests::stores;
use futures::TryStreamExt;

const CHILD: &str = env!("CARGO_BIN_EXE_es-crash-child");

/// The killed children's lease: short, so that the next child starts working soon after the
/// last one died (a dead holder's lease has to expire first).
const CRASH_LEASE: Duration = Duration::from_millis(200);

/// Orders placed in one transaction, and the pause between two such bursts, in the SIGKILL
/// test: about what a child handles in the meantime.
const ORDERS_PER_BURST: u64 = 10;
const BURST_INTERVAL: Duration = Duration::from_millis(50);

fn cycles() -> u64 {
    std::env::var("ES_CRASH_CYCLES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20)
}

/// A pseudo-random pause from 30 to 250 ms, different each cycle.
fn pause(cycle: u64) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    Duration::from_millis(30 + (nanos ^ cycle.wrapping_mul(2_654_435_761)) % 220)
}

/// A spread of numbers from `n`, the same on every run.
fn spread(n: u64, modulus: u64) -> u64 {
    (n.wrapping_mul(2_654_435_761) >> 7) % modulus
}

// ---- the child process ----

/// One `health` line of a child.
#[derive(Clone, Debug)]
struct Reported {
    checkpoint: u64,
    pending: usize,
    /// The runner's `HealthState`, as `Debug` shows it.
    state: String,
}

impl Reported {
    fn parse(line: &str) -> Option<Self> {
        let mut parts = line.strip_prefix("health ")?.splitn(3, ' ');
        Some(Reported {
            checkpoint: parts.next()?.parse().ok()?,
            pending: parts.next()?.parse().ok()?,
            state: parts.next()?.to_owned(),
        })
    }

    /// Holds the lease and works.
    fn active(&self) -> bool {
        self.state == "Running" || self.state == "CaughtUp"
    }

    /// Stands by while `holder` holds the lease.
    fn standing_by_for(&self, holder: &str) -> bool {
        self.state == format!("Standby {{ holder: {holder:?} }}")
    }
}

/// An `es-crash-child process` child, whose health lines a thread collects.
type ProcessChild = ReportingChild<Reported>;

fn spawn_process(spec: &str, holder: &str, lease: Duration) -> ProcessChild {
    let mut command = Command::new(CHILD);
    command.args(["process", spec, holder, &lease.as_millis().to_string()]);
    ReportingChild::spawn(command, holder, Reported::parse)
}

/// What a process child said last.
trait Latest {
    fn latest(&self) -> Option<Reported>;
}

impl Latest for ProcessChild {
    fn latest(&self) -> Option<Reported> {
        self.reports().last().cloned()
    }
}

// ---- orders, and what became of them ----

/// Places orders, every third one cancelled in the same append.
struct Orders {
    store: Arc<dyn Store>,
    /// Each order's id and whether it was cancelled.
    placed: Vec<(String, bool)>,
}

impl Orders {
    fn new(store: &Arc<dyn Store>) -> Self {
        Orders {
            store: Arc::clone(store),
            placed: Vec::new(),
        }
    }

    /// Places `count` orders in one transaction, the reminder of order `n` due
    /// `remind_after_ms(n)` after it: a burst that the process manager reads as one batch,
    /// sending many commands before it commits its checkpoint, so a kill lands between the
    /// two more often than with orders one at a time.
    async fn place(&mut self, count: u64, remind_after_ms: impl Fn(u64) -> u64) {
        let mut tx = self.store.begin().await.unwrap();
        let mut placed = Vec::new();
        for _ in 0..count {
            let n = (self.placed.len() + placed.len()) as u64;
            let id = format!("o{n}");
            let mut events = vec![new_event(&OrderPlaced {
                remind_after_ms: remind_after_ms(n),
            })];
            // Cancelled in the same append: recorded before its reminder is due, whatever
            // the delay, so a reminder for it is always wrong.
            let cancelled = n.is_multiple_of(3);
            if cancelled {
                events.push(new_event(&OrderCancelled));
            }
            let stream = StreamId::new("order", &id).unwrap();
            tx.append(&stream, ExpectedVersion::Exact(0), events)
                .await
                .unwrap();
            placed.push((id, cancelled));
        }
        tx.commit().await.unwrap();
        self.placed.extend(placed);
    }
}

fn new_event<E: Event + serde::Serialize>(event: &E) -> NewEvent {
    NewEvent {
        event_name: E::NAME.into(),
        schema_version: E::VERSION,
        metadata: Metadata::new(uuid::Uuid::now_v7()),
        payload: Payload::encode(event).unwrap(),
    }
}

/// What the log says happened to one order.
#[derive(Debug, Default)]
struct Fate {
    placed: u32,
    cancelled: u32,
    shipped: u32,
    reminded: u32,
}

/// The log, read whole: each order's fate, and who applied each command, in log order.
struct Log {
    fates: BTreeMap<String, Fate>,
    applied_by: Vec<(u64, String)>,
    events: usize,
}

impl Log {
    async fn read(store: &Arc<dyn Store>) -> Self {
        let mut log = Log {
            fates: BTreeMap::new(),
            applied_by: Vec::new(),
            events: 0,
        };
        let mut from = 1;
        loop {
            let page = store.read_all(from, 500).await.unwrap();
            let Some(last) = page.last() else {
                return log;
            };
            from = last.position + 1;
            log.events += page.len();
            for event in &page {
                let fate = log
                    .fates
                    .entry(event.stream.aggregate_id().to_owned())
                    .or_default();
                let by = match &*event.event_name {
                    OrderPlaced::NAME => {
                        fate.placed += 1;
                        continue;
                    }
                    OrderCancelled::NAME => {
                        fate.cancelled += 1;
                        continue;
                    }
                    Shipped::NAME => {
                        fate.shipped += 1;
                        event.event.decode::<Shipped>().unwrap().by
                    }
                    OrderReminded::NAME => {
                        fate.reminded += 1;
                        event.event.decode::<OrderReminded>().unwrap().by
                    }
                    other => panic!("unexpected event `{other}`"),
                };
                log.applied_by.push((event.position, by));
            }
        }
    }

    /// Every order shipped once; reminded once unless cancelled, then never.
    fn assert_exactly_once(&self, orders: &Orders) {
        assert_eq!(
            self.fates.len(),
            orders.placed.len(),
            "one stream id per order"
        );
        for (id, cancelled) in &orders.placed {
            let fate = &self.fates[id];
            assert_eq!(fate.placed, 1, "order {id}: {fate:?}");
            assert_eq!(fate.shipped, 1, "order {id} shipped exactly once: {fate:?}");
            if *cancelled {
                assert_eq!(fate.cancelled, 1, "order {id}: {fate:?}");
                assert_eq!(
                    fate.reminded, 0,
                    "cancelled order {id} never reminded: {fate:?}"
                );
            } else {
                assert_eq!(
                    fate.reminded, 1,
                    "order {id} reminded exactly once: {fate:?}"
                );
            }
        }
    }

    fn applied_by(&self, holder: &str) -> Vec<u64> {
        self.applied_by
            .iter()
            .filter(|(_, by)| by == holder)
            .map(|(position, _)| *position)
            .collect()
    }
}

/// The process manager's checkpoint, as the store has it.
async fn checkpoint(store: &Arc<dyn Store>) -> u64 {
    store
        .generations(CHECKPOINT_TABLE)
        .await
        .unwrap()
        .into_iter()
        .find(|state| state.status == GenerationStatus::Live)
        .map_or(1, |state| state.checkpoint)
}

/// The process manager's pending deadlines. The runtime keeps them as documents of
/// `pm_{name}_deadlines`; a change there fails this lookup loudly.
async fn pending_deadlines(store: &Arc<dyn Store>) -> Vec<String> {
    let projection = format!("{CHECKPOINT_TABLE}_deadlines");
    let generation = store
        .generations(&projection)
        .await
        .unwrap()
        .into_iter()
        .find(|state| state.status == GenerationStatus::Live)
        .map(|state| state.generation);
    let Some(generation) = generation else {
        return Vec::new(); // no child got as far as creating its tables
    };
    let table = DocumentTable {
        projection,
        generation,
        indexes: Vec::new(),
    };
    let mut keys = Vec::new();
    let mut query = ListQuery {
        limit: 500,
        ..ListQuery::default()
    };
    loop {
        let page = store.list_documents(&table, &query).await.unwrap();
        query.after = page.last().map(|row| row.key.clone());
        keys.extend(page.into_iter().map(|row| row.key));
        if query.after.is_none() {
            return keys;
        }
    }
}

/// After a kill: commands the dead process applied for causes it had not checkpointed (ships
/// for placed events at or past the checkpoint, reminders for deadlines still pending). The
/// next process sends them again; each is one kill between sending and committing.
async fn in_doubt(store: &Arc<dyn Store>) -> (u64, u64) {
    let mut ships = 0;
    let mut from = checkpoint(store).await;
    loop {
        let page = store.read_all(from, 500).await.unwrap();
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        for event in page.iter().filter(|e| &*e.event_name == OrderPlaced::NAME) {
            let shipment = StreamId::new("shipment", event.stream.aggregate_id()).unwrap();
            if store.stream_version(&shipment).await.unwrap() > 0 {
                ships += 1;
            }
        }
    }
    let mut reminders = 0;
    for key in pending_deadlines(store).await {
        let order = key.strip_prefix("remind-").unwrap();
        let events: Vec<_> = store
            .stream_events(&StreamId::new("order", order).unwrap(), 1)
            .try_collect()
            .await
            .unwrap();
        if events
            .iter()
            .any(|event| &*event.event_name == OrderReminded::NAME)
        {
            reminders += 1;
        }
    }
    (ships, reminders)
}

// ---- SIGKILL at random moments ----

async fn process_manager_across_sigkills(spec: &str, store: Arc<dyn Store>, label: &str) {
    let started = Instant::now();
    let mut orders = Orders::new(&store);
    let mut cycles_with_progress = 0;
    let mut last_checkpoint = 0;
    let (mut kills_in_doubt, mut ships_in_doubt, mut reminders_in_doubt) = (0, 0, 0);
    // At least `cycles()` kills, and more (up to four times as many) until one has landed
    // between sending and checkpointing: how often one does depends on the machine's speed
    // (1 to 13 in 20 so far), and a run without one would prove little.
    let mut cycle = 0;
    while cycle < cycles() || (kills_in_doubt == 0 && cycle < 4 * cycles()) {
        cycle += 1;
        let mut child = spawn_process(spec, &format!("child-{cycle}"), CRASH_LEASE);
        // Orders keep arriving in bursts while process managers come and go, so a child
        // has work whenever it holds the lease (reminders due within 0 to 300 ms come due
        // all the time). It is killed at a random moment after the last child's lease has
        // expired (its first round catching up on the bursts placed meanwhile) or later.
        let spawned = Instant::now();
        let kill_at = CRASH_LEASE + pause(cycle);
        while spawned.elapsed() < kill_at {
            orders.place(ORDERS_PER_BURST, |n| spread(n, 301)).await;
            tokio::time::sleep(BURST_INTERVAL).await;
        }
        child.kill();
        let checkpoint = checkpoint(&store).await;
        if checkpoint > last_checkpoint {
            cycles_with_progress += 1;
            last_checkpoint = checkpoint;
        }
        let (ships, reminders) = in_doubt(&store).await;
        ships_in_doubt += ships;
        reminders_in_doubt += reminders;
        if ships + reminders > 0 {
            kills_in_doubt += 1;
        }
    }
    assert!(
        cycles_with_progress >= cycle / 2,
        "the killed children moved the checkpoint in only {cycles_with_progress} of {cycle} cycles"
    );
    // Kills that landed between sending and checkpointing are what exactly-once is about.
    assert!(
        kills_in_doubt > 0 || cycles() < 10,
        "no kill in {cycle} cycles landed between sending commands and checkpointing"
    );

    // Finish in this process, once the last child's lease has expired.
    let runner = process::start(Arc::clone(&store), "final", CRASH_LEASE).await;
    let wait = Instant::now();
    loop {
        let health = runner.health().await.unwrap();
        let head = store.head_position().await.unwrap();
        if health.checkpoint > head && health.pending_deadlines == 0 {
            break;
        }
        assert!(
            wait.elapsed() < Duration::from_secs(60),
            "the process manager did not finish within 60 s: {health:?}, head {head}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    runner.shutdown().await;

    let log = Log::read(&store).await;
    log.assert_exactly_once(&orders);
    let cancelled = orders.placed.iter().filter(|(_, c)| *c).count();
    println!(
        "process manager across SIGKILLs on {label}: cycles {} ({cycles_with_progress} with progress, \
         {kills_in_doubt} killed between sending and checkpointing: {ships_in_doubt} ships and \
         {reminders_in_doubt} reminders sent again), orders {} ({cancelled} cancelled), events {}, \
         finished by the last runner {}, shipped twice 0, reminded twice 0, cancelled reminded 0, \
         {:.1} s",
        cycle,
        orders.placed.len(),
        log.events,
        log.applied_by("final").len(),
        started.elapsed().as_secs_f64()
    );
}

fn sqlite_spec() -> (String, std::path::PathBuf) {
    let dir = std::env::temp_dir().join("es-crash");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("pm-{}.db", uuid::Uuid::new_v4().simple()));
    (format!("sqlite:{}", path.display()), path)
}

async fn postgres_spec() -> Option<(String, es_core::postgres::PostgresStore)> {
    let store = stores::postgres_store_with_prefix("es_pm_crash_").await?;
    let url = stores::postgres_url().await?;
    Some((format!("postgres:{url}#{}", store.schema()), store))
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_process_manager_applies_each_command_once_across_sigkills() {
    let (spec, path) = sqlite_spec();
    let store = es_tests::crash::open(&spec).await;
    process_manager_across_sigkills(&spec, store, "sqlite").await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_process_manager_applies_each_command_once_across_sigkills() {
    let Some((spec, store)) = postgres_spec().await else {
        return;
    };
    process_manager_across_sigkills(&spec, Arc::new(store.clone()), "postgres").await;
    store.drop_schema().await.unwrap();
}

// ---- two instances, one lease ----

/// Waits up to `limit` for `found` to find something.
async fn wait_for<T>(limit: Duration, what: &str, mut found: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = found() {
            return value;
        }
        assert!(start.elapsed() < limit, "waited {limit:?} for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_a_standby_process_manager_takes_over_when_the_active_one_is_killed() {
    let Some((spec, pg)) = postgres_spec().await else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let lease = Duration::from_secs(1);
    // Reminders due 0.2 to 3 s after their orders: some fire before the kill, some after.
    let remind_after_ms = |n| 200 + spread(n, 2800);
    let mut orders = Orders::new(&store);
    // Bursts of 20: a round of the active one stays well within the lease (the test is
    // about death, not about rounds that outlast the lease).
    orders.place(20, remind_after_ms).await;
    let mut children = [
        spawn_process(&spec, "pm-a", lease),
        spawn_process(&spec, "pm-b", lease),
    ];

    // One takes the lease; the other stands by, naming it.
    let (active, standby) = wait_for(Duration::from_secs(15), "one active, one standby", || {
        let (a, b) = (children[0].latest()?, children[1].latest()?);
        if a.active() && b.standing_by_for("pm-a") {
            Some((0, 1))
        } else if b.active() && a.standing_by_for("pm-b") {
            Some((1, 0))
        } else {
            None
        }
    })
    .await;
    let (active_holder, standby_holder) = (
        children[active].holder.clone(),
        children[standby].holder.clone(),
    );
    // More orders while both run: the standby stays standby throughout.
    for _ in 0..3 {
        orders.place(20, remind_after_ms).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = children[standby].reports().len();
    assert!(
        children[standby]
            .reports()
            .iter()
            .skip_while(|reported| !reported.state.starts_with("Standby"))
            .all(|reported| reported.standing_by_for(&active_holder)),
        "the standby stood by for {active_holder} while it lived: {:?}",
        children[standby].reports()
    );

    // Work left over for the standby: orders just placed, reminders not yet due.
    orders.place(20, remind_after_ms).await;
    children[active].kill();
    let killed_at = Instant::now();
    let log = Log::read(&store).await;
    assert!(
        log.applied_by(&standby_holder).is_empty(),
        "the standby applied nothing while the other held the lease"
    );
    assert!(!log.applied_by(&active_holder).is_empty());

    // The standby takes over once the dead holder's lease expires.
    wait_for(Duration::from_secs(10), "the standby to take over", || {
        children[standby].latest().filter(Reported::active)
    })
    .await;
    let takeover = killed_at.elapsed();
    let before_takeover = children[standby].reports()[seen..]
        .iter()
        .take_while(|reported| !reported.active())
        .all(|reported| reported.standing_by_for(&active_holder));
    assert!(
        before_takeover,
        "until it took over, the standby stood by for the dead holder"
    );

    // It finishes the work: every event handled, every deadline fired or cancelled.
    let wait = Instant::now();
    loop {
        let reported = children[standby].latest().unwrap();
        let head = store.head_position().await.unwrap();
        if reported.checkpoint > head && reported.pending == 0 {
            break;
        }
        assert!(
            wait.elapsed() < Duration::from_secs(30),
            "the survivor did not finish within 30 s: {reported:?}, head {head}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    children[standby].kill();

    let log = Log::read(&store).await;
    log.assert_exactly_once(&orders);
    let (by_dead, by_survivor) = (
        log.applied_by(&active_holder),
        log.applied_by(&standby_holder),
    );
    assert!(!by_survivor.is_empty(), "the survivor did work");
    assert!(
        by_dead.iter().max() < by_survivor.iter().min(),
        "one at a time: everything the survivor applied comes after what the dead one applied"
    );
    println!(
        "process manager takeover on postgres: lease {lease:?}, standby working {:.2} s after the kill, \
         orders {}, events {}, commands applied by the killed instance {}, by the survivor {}, \
         shipped twice 0, reminded twice 0, cancelled reminded 0",
        takeover.as_secs_f64(),
        orders.placed.len(),
        log.events,
        by_dead.len(),
        by_survivor.len()
    );
    pg.drop_schema().await.unwrap();
}

/// A round that fires many deadlines at once takes longer than the lease: the holder must
/// keep its lease through it, so that the standby does not start firing the same deadlines
/// beside it.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_a_long_round_of_deadlines_keeps_the_lease() {
    let Some((_, pg)) = postgres_spec().await else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let lease = Duration::from_millis(500);
    let first = process::start(Arc::clone(&store), "first", lease).await;
    // 400 reminders, all due at once once the first runner has handled their orders: more
    // than it fires within one lease.
    let mut orders = Orders::new(&store);
    for _ in 0..60 {
        orders.place(10, |_| 5000).await;
    }
    let wait = Instant::now();
    while first.health().await.unwrap().checkpoint <= store.head_position().await.unwrap() {
        assert!(
            wait.elapsed() < Duration::from_secs(30),
            "the first runner did not catch up within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = process::start(Arc::clone(&store), "second", lease).await;
    let mut samples = 0;
    loop {
        let (health, standby) = (
            first.health().await.unwrap(),
            second.health().await.unwrap(),
        );
        assert!(
            matches!(&standby.state, HealthState::Starting)
                || standby.state
                    == HealthState::Standby {
                        holder: "first".into()
                    },
            "the second runner stands by while the first fires: {:?}",
            standby.state
        );
        samples += 1;
        if health.pending_deadlines == 0 {
            break;
        }
        assert!(
            wait.elapsed() < Duration::from_secs(60),
            "the deadlines did not all fire within 60 s: {health:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.shutdown().await;
    second.shutdown().await;
    let log = Log::read(&store).await;
    log.assert_exactly_once(&orders);
    assert!(log.applied_by("second").is_empty());
    println!(
        "long round on postgres: lease {lease:?}, {} reminders due at once, fired by the lease \
         holder alone ({samples} samples of the standby), {:.1} s",
        log.applied_by("first").len() - orders.placed.len(),
        wait.elapsed().as_secs_f64()
    );
    pg.drop_schema().await.unwrap();
}
