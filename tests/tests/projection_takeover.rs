//! The projection daemon in two real processes on one PostgreSQL store: one holds the lease
//! of each projection while the other stands by; SIGKILL the holder mid-run, while events
//! keep arriving, and the other takes over once the dead holder's lease runs out, carrying
//! on from the stored checkpoint. The read models it leaves (a document projection and a
//! SQL one) equal the count a single process applying the log once would make.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use es_core::{EventLog, EventLogExt, ExpectedVersion, GenerationStatus, Store, StreamId};
use es_tests::child::ReportingChild;
use es_tests::stores;
use futures::TryStreamExt;

const CHILD: &str = env!("CARGO_BIN_EXE_es-crash-child");

/// The projections `es-crash-child project` runs, each under a lease of its own.
const PROJECTIONS: [&str; 2] = ["crash_tallies", "crash_sql_tallies"];

/// The children's lease. Longer than the crash tests' 150 ms: a holder renews it at the start
/// of every round, and on a loaded two-core machine a round (or the first one, creating
/// tables) has taken over 150 ms now and then, handing the lease to the other child before
/// any kill and blurring which child is the holder. A second leaves ample margin and still
/// makes the takeover quick.
const LEASE: Duration = Duration::from_secs(1);

/// How soon after the holder's death the other process must report holding every lease:
/// the dead holder's lease has to run out (at most [`LEASE`] after its last renewal), then
/// the standby's next round (10 ms polls) takes it and its next line (20 ms) says so. The
/// rest is slack for a loaded machine.
const TAKEOVER_LIMIT: Duration = Duration::from_secs(3);

/// The appender's pause between two appends: events keep arriving throughout, without the
/// appender taking a core of a small machine from the daemons whose leases are timed.
const APPEND_PAUSE: Duration = Duration::from_millis(5);

// ---- the children ----

/// One `projection` line of a project child, stamped when the parent read it (the two
/// children's lines are ordered by that).
#[derive(Clone, Debug)]
struct Reported {
    at: Instant,
    projection: String,
    /// The lease holder the store named, if the lease had not run out.
    store_holder: Option<String>,
    /// The daemon's `HealthState` for the projection, as `Debug` shows it.
    state: String,
}

/// What a report says about the lease, from the daemon's state for the projection.
#[derive(Clone, Debug, PartialEq)]
enum Said {
    /// This process's last round held the lease (and applied, or found nothing to apply).
    Holding,
    /// This process's last round found the named process holding the lease.
    StandingBy(String),
    /// Nothing about the lease: starting, retrying after a store error, or held back behind
    /// a long-open transaction (the store's view, which overrides the daemon's own, and
    /// comes and goes with other clients of the server).
    Nothing,
}

impl Reported {
    fn parse(line: &str, at: Instant) -> Option<Self> {
        let mut parts = line.strip_prefix("projection ")?.splitn(4, ' ');
        Some(Reported {
            at,
            projection: parts.next()?.to_owned(),
            // Past the checkpoint: the test reads the stored one itself.
            store_holder: Some(parts.nth(1)?)
                .filter(|holder| *holder != "-")
                .map(str::to_owned),
            state: parts.next()?.to_owned(),
        })
    }

    fn said(&self) -> Said {
        let state = self.state.as_str();
        if state == "Running" || state == "CaughtUp" || state.starts_with("Rebuilding") {
            return Said::Holding;
        }
        match state
            .strip_prefix("Standby { holder: \"")
            .and_then(|rest| rest.strip_suffix("\" }"))
        {
            Some(holder) => Said::StandingBy(holder.to_owned()),
            None => Said::Nothing,
        }
    }
}

/// An `es-crash-child project SPEC HOLDER` child, whose `projection` lines a thread
/// collects, stamped with when they were read.
type ProjectChild = ReportingChild<Reported>;

fn spawn_project(spec: &str, holder: &str) -> ProjectChild {
    let mut command = Command::new(CHILD);
    command.args(["project", spec, holder, &LEASE.as_millis().to_string()]);
    ReportingChild::spawn(command, holder, |line| {
        Reported::parse(line, Instant::now())
    })
}

/// What a project child said of one projection.
trait Sayings {
    fn latest_since(&self, projection: &str, since: Instant) -> Option<Reported>;
    fn latest_said(&self, projection: &str) -> Option<Said>;
}

impl Sayings for ProjectChild {
    /// The last report on `projection` read after `since`, if any.
    fn latest_since(&self, projection: &str, since: Instant) -> Option<Reported> {
        self.reports()
            .iter()
            .rev()
            .take_while(|reported| reported.at > since)
            .find(|reported| reported.projection == projection)
            .cloned()
    }

    /// What the last report on `projection` that said anything about the lease said.
    fn latest_said(&self, projection: &str) -> Option<Said> {
        self.reports()
            .iter()
            .rev()
            .filter(|reported| reported.projection == projection)
            .map(Reported::said)
            .find(|said| *said != Said::Nothing)
    }
}

/// Appends batches of 1 to 5 `crash.appended` events to one stream, as
/// `es-crash-child append` does, until stopped. In this process rather than a child, so that
/// stopping it leaves no append in flight: a killed appender's last commit can land after
/// the head the test waits for, and the projections would be compared before applying it.
struct Appender {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<u64>,
}

impl Appender {
    fn spawn(store: &Arc<dyn Store>, stream_id: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (store, stop) = (Arc::clone(store), Arc::clone(&stop));
            let stream = StreamId::new("crash", stream_id).unwrap();
            async move {
                let mut version = 0;
                let mut batch = 0;
                while !stop.load(Ordering::Relaxed) {
                    batch += 1;
                    let events = es_tests::crash::appended_batch(batch);
                    let recorded = store
                        .append(&stream, ExpectedVersion::Exact(version), events)
                        .await
                        .unwrap();
                    version = recorded.last().unwrap().version;
                    tokio::time::sleep(APPEND_PAUSE).await;
                }
                batch
            }
        });
        Appender { stop, task }
    }

    /// Stops after the append under way; returns how many batches were appended.
    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

// ---- the store's view ----

/// Each projection's checkpoint as stored (the next position it will read): what the
/// holder committed, whichever process it is.
async fn stored_checkpoints(store: &Arc<dyn Store>) -> BTreeMap<&'static str, u64> {
    let mut checkpoints = BTreeMap::new();
    for projection in PROJECTIONS {
        let checkpoint = store
            .generations(projection)
            .await
            .unwrap()
            .into_iter()
            .find(|state| state.status == GenerationStatus::Live)
            .map_or(0, |state| state.checkpoint);
        checkpoints.insert(projection, checkpoint);
    }
    checkpoints
}

/// Waits up to `limit` for `found` to find something, looking every 10 ms.
async fn wait_for<T, F: std::future::Future<Output = Option<T>>>(
    limit: Duration,
    what: &str,
    mut found: impl FnMut() -> F,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = found().await {
            return value;
        }
        assert!(start.elapsed() < limit, "waited {limit:?} for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Replays both children's reports in the order the parent read them: after each, for
/// every projection, at most one child's latest word on the lease is that it holds it.
/// Returns how many reports were checked.
fn assert_one_holder_at_a_time(children: &[ProjectChild; 2], until: Instant) -> usize {
    let mut timeline: Vec<(usize, Reported)> = children
        .iter()
        .enumerate()
        .flat_map(|(index, child)| child.reports().clone().into_iter().map(move |r| (index, r)))
        .filter(|(_, reported)| reported.at <= until)
        .collect();
    timeline.sort_by_key(|(_, reported)| reported.at);
    let mut latest: BTreeMap<(String, usize), Reported> = BTreeMap::new();
    for (index, reported) in &timeline {
        if reported.said() == Said::Nothing {
            continue;
        }
        latest.insert((reported.projection.clone(), *index), reported.clone());
        let (a, b) = (
            latest.get(&(reported.projection.clone(), 0)),
            latest.get(&(reported.projection.clone(), 1)),
        );
        if let (Some(a), Some(b)) = (a, b) {
            assert!(
                !(a.said() == Said::Holding && b.said() == Said::Holding),
                "both children reported holding {}: {a:?} and {b:?}",
                reported.projection
            );
        }
    }
    timeline.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_projection_lease_holder_killed_the_other_process_takes_over() {
    let Some(pg) = stores::postgres_store_with_prefix("es_takeover_").await else {
        return;
    };
    let Some(url) = stores::postgres_url().await else {
        return;
    };
    let spec = format!("postgres:{url}#{}", pg.schema());
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let started = Instant::now();
    let stream_id = format!("takeover-{}", uuid::Uuid::new_v4().simple());

    // Events arrive from before the daemons start until after the survivor took over.
    let appender = Appender::spawn(&store, &stream_id);
    // The second child starts once the first reports, i.e. once its daemon has started: two
    // daemons starting at the same moment on a fresh schema both create the SQL projection's
    // tables (its "tables made" marker is not written yet when the second looks), and one
    // start fails with a duplicate `pg_type` key. That is a start-up race of its own; this
    // test is about a running holder dying. Generous: connecting and creating tables on a
    // loaded machine.
    let first = spawn_project(&spec, "takeover-a");
    wait_for(Duration::from_secs(10), "the first child to start", || {
        std::future::ready(first.latest_since(PROJECTIONS[0], started).map(|_| ()))
    })
    .await;
    let mut children = [first, spawn_project(&spec, "takeover-b")];

    // For each projection one child holds the lease and the other stands by naming it.
    // (Each projection has a lease of its own, so the two may go to different children, and
    // the second may win a lease the first had not taken yet.)
    let holders: BTreeMap<&str, usize> = wait_for(
        Duration::from_secs(10),
        "each projection held by one child, the other standing by for it",
        || {
            let found = PROJECTIONS
                .iter()
                .map(|&projection| {
                    let a = children[0].latest_said(projection)?;
                    let b = children[1].latest_said(projection)?;
                    match (a, b) {
                        (Said::Holding, Said::StandingBy(b)) if b == children[0].holder => {
                            Some((projection, 0))
                        }
                        (Said::StandingBy(a), Said::Holding) if a == children[1].holder => {
                            Some((projection, 1))
                        }
                        _ => None,
                    }
                })
                .collect::<Option<BTreeMap<_, _>>>();
            std::future::ready(found)
        },
    )
    .await;
    let settled = Instant::now();
    // The holder of the first projection dies; it may hold the other one too.
    let victim = holders[PROJECTIONS[0]];
    let survivor = 1 - victim;
    let (victim_holder, survivor_holder) = (
        children[victim].holder.clone(),
        children[survivor].holder.clone(),
    );
    let taken_over: Vec<&str> = PROJECTIONS
        .iter()
        .copied()
        .filter(|projection| holders[projection] == victim)
        .collect();

    // Mid-run: both run while the holders apply what keeps arriving, for one and a half
    // leases (a lease not renewed would have run out and passed to the other child), until
    // each stored checkpoint has passed the head as it was when the leases settled.
    let head_settled = store.head_position().await.unwrap();
    let checkpoints_before = wait_for(
        Duration::from_secs(10),
        "the holders to apply events while the other child stands by",
        || {
            let store = Arc::clone(&store);
            let long_enough = settled.elapsed() > LEASE * 3 / 2;
            async move {
                let checkpoints = stored_checkpoints(&store).await;
                (long_enough
                    && checkpoints
                        .values()
                        .all(|&checkpoint| checkpoint > head_settled))
                .then_some(checkpoints)
            }
        },
    )
    .await;

    // While both ran, one holder per projection at any time, and the same one throughout
    // once settled: the holder never stood by, the other never held the lease and stood by
    // for the holder, and the store named no one else.
    children[victim].kill();
    let killed_at = Instant::now();
    let checked = assert_one_holder_at_a_time(&children, killed_at);
    for child in &children {
        for reported in child.reports().clone() {
            if reported.at < settled || reported.at > killed_at {
                continue;
            }
            let holder = &children[holders[reported.projection.as_str()]].holder;
            let projection = &reported.projection;
            if *holder == child.holder {
                assert!(
                    !matches!(reported.said(), Said::StandingBy(_)),
                    "{holder} held {projection} throughout: {reported:?}"
                );
            } else {
                assert!(
                    matches!(reported.said(), Said::StandingBy(ref by) if by == holder)
                        || reported.said() == Said::Nothing,
                    "{} stood by for {holder} on {projection} while it lived: {reported:?}",
                    child.holder
                );
            }
            assert!(
                reported.store_holder.is_none() || reported.store_holder.as_ref() == Some(holder),
                "the store named {holder} or no one as holding {projection}: {reported:?}"
            );
        }
    }
    let checkpoints_at_kill = stored_checkpoints(&store).await;
    let head_at_kill = store.head_position().await.unwrap();

    // The survivor reports holding every lease within the bound: the store names it, and its
    // daemon no longer stands by. The dead holder's lease runs out; nothing of the dead
    // process is needed for that.
    let holds = |reported: &Reported| {
        reported.store_holder.as_deref() == Some(survivor_holder.as_str())
            && !matches!(reported.said(), Said::StandingBy(_))
    };
    wait_for(TAKEOVER_LIMIT, "the survivor to hold every lease", || {
        let held = PROJECTIONS.iter().all(|projection| {
            children[survivor]
                .latest_since(projection, killed_at)
                .is_some_and(|reported| holds(&reported))
        });
        std::future::ready(held.then_some(()))
    })
    .await;
    // When it first said so, per projection it took over (its lines are 20 ms apart); until
    // then it stood by for the dead holder.
    let survivor_reports = children[survivor].reports().clone();
    let takeover = taken_over
        .iter()
        .map(|projection| {
            let after_kill = survivor_reports
                .iter()
                .filter(|r| r.projection == *projection && r.at > killed_at);
            let first_held = after_kill.clone().find(|r| holds(r)).unwrap();
            for reported in after_kill.take_while(|r| !holds(r)) {
                assert!(
                    reported.said() == Said::StandingBy(victim_holder.clone())
                        || reported.said() == Said::Nothing,
                    "until it took {projection} over, {survivor_holder} stood by for the dead \
                     holder: {reported:?}"
                );
            }
            first_held.at - killed_at
        })
        .max()
        .unwrap();

    // The stored checkpoints keep advancing after the death: the survivor applies what
    // keeps arriving, past everything appended before the kill.
    wait_for(
        Duration::from_secs(10),
        "the stored checkpoints to advance after the kill",
        || {
            let (store, checkpoints_at_kill) = (Arc::clone(&store), checkpoints_at_kill.clone());
            async move {
                let checkpoints = stored_checkpoints(&store).await;
                checkpoints
                    .iter()
                    .all(|(projection, &checkpoint)| {
                        checkpoint > checkpoints_at_kill[projection] && checkpoint > head_at_kill
                    })
                    .then_some(())
            }
        },
    )
    .await;

    // Stop the events, let the survivor apply the rest, then stop it too.
    let batches = appender.stop().await;
    let head = store.head_position().await.unwrap();
    let final_checkpoints = wait_for(
        Duration::from_secs(10),
        "the survivor to apply every event",
        || {
            let store = Arc::clone(&store);
            async move {
                let checkpoints = stored_checkpoints(&store).await;
                checkpoints
                    .values()
                    .all(|&checkpoint| checkpoint > head)
                    .then_some(checkpoints)
            }
        },
    )
    .await;
    children[survivor].kill();

    // What a single process would have made: the count from the log.
    let expected = es_tests::crash::logged_tally(&*store, &stream_id).await;
    let stream = StreamId::new("crash", &stream_id).unwrap();
    let events: Vec<_> = store.stream_events(&stream, 1).try_collect().await.unwrap();
    let before_kill = events
        .iter()
        .filter(|event| event.position < checkpoints_at_kill[PROJECTIONS[0]])
        .count();
    assert!(
        before_kill > 0 && before_kill < events.len(),
        "both the killed holder ({before_kill} events) and the survivor ({}) applied events",
        events.len() - before_kill
    );
    let (document, sql) = es_tests::crash::projected_tallies(&*store, &stream_id).await;
    assert!(expected.events > 0);
    assert_eq!(
        document, expected,
        "the document tally equals one process's: every event applied exactly once across the takeover"
    );
    assert_eq!(
        sql, expected,
        "the SQL tally equals one process's: every event applied exactly once across the takeover"
    );
    println!(
        "projection takeover on postgres: lease {LEASE:?}; {victim_holder} held {taken_over:?} \
         while {survivor_holder} stood by ({checked} reports of both, one holder at a time), \
         applied {before_kill} events of {} ({batches} appends; checkpoints \
         {checkpoints_before:?} mid-run) and was \
         killed at checkpoints {checkpoints_at_kill:?} (head {head_at_kill}); {survivor_holder} \
         reported holding them {:.3} s later and applied the other {} (checkpoints \
         {final_checkpoints:?} at the end); document and SQL tallies equal the log's: applied \
         twice 0, lost 0; {:.1} s",
        events.len(),
        takeover.as_secs_f64(),
        events.len() - before_kill,
        started.elapsed().as_secs_f64()
    );
    pg.drop_schema().await.unwrap();
}
