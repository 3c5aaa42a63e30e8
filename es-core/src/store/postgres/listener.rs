//! Waking daemons when events are appended, in this process and in any other: each append
//! is followed, in the same round trip, by `pg_notify(channel, head position)` (see
//! `append.rs` for why after the commit rather than inside it), and the store keeps one
//! dedicated connection that `LISTEN`s on the channel while anyone subscribes.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, NoTls};

use super::connection::DriverError;

/// The first wait before connecting again after the listening connection failed; it doubles
/// up to [`MAX_RETRY`] and starts over once a connection listens.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// The notification channel of a schema's appends. Channel names are identifiers of at most
/// 63 bytes; two long schema names sharing a prefix share a channel, which only costs them
/// a few needless wake-ups.
pub(super) fn channel(schema: &str) -> String {
    let mut channel = format!("es_appended_{schema}");
    // Schema names are ASCII (checked), so any byte index is a character boundary.
    channel.truncate(63);
    channel
}

/// The latest appended position anyone told this store about, and the listener feeding it.
pub(super) struct Listener {
    inner: Arc<Inner>,
}

struct Inner {
    /// The largest position heard of. Receivers only care that it changed.
    positions: watch::Sender<u64>,
    /// Whether the listening task runs; changed only under this lock, together with
    /// subscribing, so a task that sees no receivers and stops never misses a new one.
    running: Mutex<bool>,
    config: tokio_postgres::Config,
    channel: String,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("channel", &self.inner.channel)
            .finish_non_exhaustive()
    }
}

impl Listener {
    /// A listener for `schema`'s channel that connects with `config` once someone subscribes.
    pub(super) fn new(schema: &str, mut config: tokio_postgres::Config) -> Self {
        // The connection is idle between notifications: probe it, so a silently dead peer is
        // noticed within a minute or so rather than after the system's default two hours.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        Listener {
            inner: Arc::new(Inner {
                positions: watch::Sender::new(0),
                running: Mutex::new(false),
                config,
                channel: channel(schema),
            }),
        }
    }

    /// This process appended up to `position`.
    pub(super) fn appended(&self, position: u64) {
        self.inner.heard(position);
    }

    /// A receiver that changes on every append, starting the listening task if none runs
    /// (outside a Tokio runtime, it hears this process's appends only).
    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        let mut running = self.inner.lock_running();
        let receiver = self.inner.positions.subscribe();
        if !*running {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(listen(Arc::clone(&self.inner)));
                *running = true;
            }
        }
        receiver
    }
}

impl Inner {
    fn lock_running(&self) -> MutexGuard<'_, bool> {
        // A bool is always whole; a panic elsewhere cannot leave it half-written.
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn heard(&self, position: u64) {
        // Always marks the value changed, so every receiver wakes, even for a position
        // below one already heard (notifications arrive in commit order, not position order).
        self.positions
            .send_modify(|latest| *latest = (*latest).max(position));
    }

    /// Whether the task should stop: nobody listens. Checked under the lock `subscribe` takes.
    fn stop_if_unwanted(&self) -> bool {
        let mut running = self.lock_running();
        if self.positions.receiver_count() == 0 {
            *running = false;
            true
        } else {
            false
        }
    }
}

/// Keeps a listening connection open while anyone subscribes, connecting again (with
/// backoff) when it drops.
async fn listen(inner: Arc<Inner>) {
    let mut retry = FIRST_RETRY;
    loop {
        {
            let session = session(&inner);
            tokio::pin!(session);
            loop {
                tokio::select! {
                    (listened, error) = &mut session => {
                        if listened {
                            retry = FIRST_RETRY;
                        }
                        tracing::warn!(channel = %inner.channel, %error, retry_in = ?retry, "listening for appends failed; daemons poll until it is back");
                        break;
                    }
                    () = inner.positions.closed() => {
                        if inner.stop_if_unwanted() {
                            return;
                        }
                    }
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(retry) => {}
            () = inner.positions.closed() => {
                if inner.stop_if_unwanted() {
                    return;
                }
            }
        }
        retry = (retry * 2).min(MAX_RETRY);
    }
}

/// One listening connection, until it fails; returns whether it got to listen, and why it
/// ended.
async fn session(inner: &Inner) -> (bool, ListenFailure) {
    let (client, mut connection) = match inner.config.connect(NoTls).await {
        Ok(connected) => connected,
        Err(error) => return (false, error.into()),
    };
    // Polling the connection's messages also drives the client's requests.
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    let statement = format!("LISTEN \"{}\"", inner.channel);
    {
        let listen = client.batch_execute(&statement);
        tokio::pin!(listen);
        loop {
            tokio::select! {
                listening = &mut listen => match listening {
                    Ok(()) => break,
                    Err(error) => return (false, error.into()),
                },
                message = messages.next() => {
                    if let Err(error) = handle(inner, message) {
                        return (false, error);
                    }
                }
            }
        }
    }
    // Appends committed while nobody listened were not heard: wake every receiver once, so
    // each looks for itself.
    inner.positions.send_modify(|_| {});
    loop {
        if let Err(error) = handle(inner, messages.next().await) {
            // `client` lives until here: dropping it would close the connection.
            drop(client);
            return (true, error);
        }
    }
}

fn handle(
    inner: &Inner,
    message: Option<Result<AsyncMessage, tokio_postgres::Error>>,
) -> Result<(), ListenFailure> {
    match message {
        Some(Ok(AsyncMessage::Notification(notification))) => {
            // Anything else on the channel is still news of an append.
            inner.heard(notification.payload().parse().unwrap_or(0));
            Ok(())
        }
        Some(Ok(_notice)) => Ok(()),
        Some(Err(error)) => Err(error.into()),
        None => Err(ListenFailure::Closed),
    }
}

/// Why the listening connection ended.
#[derive(Debug, thiserror::Error)]
enum ListenFailure {
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error("the server closed the connection")]
    Closed,
}

impl From<tokio_postgres::Error> for ListenFailure {
    fn from(error: tokio_postgres::Error) -> Self {
        ListenFailure::Driver(error.into())
    }
}
