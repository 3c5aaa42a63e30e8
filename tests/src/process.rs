//! What the process manager crash tests' child runs, and what the parent checks it against.
//!
//! Orders are placed (some cancelled in the same append); the `order_fulfilment` process
//! manager ships each placed order and schedules a reminder per order, a short time later on
//! the system clock, which an `order.cancelled` event cancels. Both commands it sends are
//! applied by handlers that emit an event every time they run, so a command applied twice
//! shows as two events, and each event names the process (`by`) that applied it.

use std::sync::Arc;
use std::time::Duration;

use es_core::process::{
    Deadline, Dispatch, Dispatcher, Process, ProcessConfig, ProcessRunner, SystemClock,
};
use es_core::{
    aggregate, process_manager, Command, Context, Envelope, Event, ReadStore, Repository, Store,
};
use serde::{Deserialize, Serialize};

/// Who applies commands in this process: written into the events its handlers emit, so the
/// parent can tell which of two processes did the work.
#[derive(Clone, Debug, Default)]
pub struct Instance {
    /// The process's name (its lease holder name, for a child).
    pub name: String,
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
pub struct Never;

// ---- orders ----

/// An order was placed; its reminder comes due `remind_after_ms` after it was recorded.
/// The tests append order events directly, many orders to a transaction.
#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "order.placed")]
pub struct OrderPlaced {
    /// How long after placing the customer is reminded, unless the order is cancelled first.
    pub remind_after_ms: u64,
}

/// An order was cancelled: its reminder must never fire.
#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "order.cancelled")]
pub struct OrderCancelled;

/// The customer was reminded of their order.
#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "order.reminded")]
pub struct OrderReminded {
    /// The process that applied the command.
    pub by: String,
}

/// Reminds the customer.
#[derive(Command, Clone, Debug)]
pub struct Remind;

/// An order: placed and cancelled by the tests' appends, reminded by the process manager.
#[aggregate(name = "order", id = String, error = Never, services = Instance)]
#[derive(Default, Debug)]
pub struct Order;

#[aggregate]
impl Order {
    /// Reminds every time it is asked, even a cancelled order: the test, not the
    /// aggregate, judges whether it should have been.
    #[handle]
    fn remind(&self, _: Remind, context: &Context<Instance>) -> Result<OrderReminded, Never> {
        Ok(OrderReminded {
            by: context.services().name.clone(),
        })
    }

    #[apply]
    fn placed(&mut self, _: &OrderPlaced) {}

    #[apply]
    fn cancelled(&mut self, _: &OrderCancelled) {}

    #[apply]
    fn reminded(&mut self, _: &OrderReminded) {}
}

// ---- shipments ----

/// A shipment went out.
#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "shipment.shipped")]
pub struct Shipped {
    /// The process that applied the command.
    pub by: String,
}

/// Ships an order.
#[derive(Command, Clone, Debug)]
pub struct Ship;

/// The shipment of an order (same id as the order).
#[aggregate(name = "shipment", id = String, error = Never, services = Instance)]
#[derive(Default, Debug)]
pub struct Shipment;

#[aggregate]
impl Shipment {
    /// Ships every time it is asked: a command applied twice shows as two events.
    #[handle]
    fn ship(&self, _: Ship, context: &Context<Instance>) -> Result<Shipped, Never> {
        Ok(Shipped {
            by: context.services().name.clone(),
        })
    }

    #[apply]
    fn shipped(&mut self, _: &Shipped) {}
}

// ---- the process manager ----

/// The deadline's message: remind the customer of `order`.
#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "order.remind_due")]
pub struct ReminderDue {
    /// The order.
    pub order: String,
}

/// The process manager keeps no state of its own: its deadlines are all it remembers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NoState;

/// Ships placed orders and reminds customers of the ones not cancelled in time.
#[process_manager(name = "order_fulfilment")]
#[derive(Debug)]
pub struct OrderFulfilment;

/// The key of an order's reminder deadline.
pub fn reminder_key(order: &str) -> String {
    format!("remind-{order}")
}

#[process_manager]
impl OrderFulfilment {
    #[on]
    fn placed(
        &self,
        event: &Envelope<OrderPlaced>,
        process: &mut Process<'_, NoState>,
    ) -> Dispatch {
        let order = event.aggregate_id().to_owned();
        process.schedule_after(
            reminder_key(&order),
            Duration::from_millis(event.event.remind_after_ms),
            ReminderDue {
                order: order.clone(),
            },
        );
        Dispatch::to::<Shipment>(order, Ship)
    }

    #[on]
    fn cancelled(&self, event: &Envelope<OrderCancelled>, process: &mut Process<'_, NoState>) {
        process.cancel(reminder_key(event.aggregate_id()));
    }

    #[on]
    fn reminder_due(
        &self,
        deadline: &Deadline<ReminderDue>,
        _: &mut Process<'_, NoState>,
    ) -> Dispatch {
        Dispatch::to::<Order>(deadline.message.order.clone(), Remind)
    }
}

/// The name under which the process manager files its checkpoint (its state table's).
pub const CHECKPOINT_TABLE: &str = "pm_order_fulfilment";

/// Starts [`OrderFulfilment`] on `store` on the system clock, applying its commands as
/// `holder` and holding its lease as `holder` for `lease_ttl`.
pub async fn start(store: Arc<dyn Store>, holder: &str, lease_ttl: Duration) -> ProcessRunner {
    let instance = Instance {
        name: holder.to_owned(),
    };
    let dispatcher = Dispatcher::new()
        .route(Repository::<Order>::with_services(
            Arc::clone(&store),
            instance.clone(),
        ))
        .route(Repository::<Shipment>::with_services(
            Arc::clone(&store),
            instance,
        ));
    let config = ProcessConfig {
        holder: holder.to_owned(),
        lease_ttl,
        // Short pauses, so that deadlines fire soon after they are due and a standby
        // notices an expired lease soon after it expires.
        poll_interval: Duration::from_millis(10),
        retry_after: Duration::from_millis(10),
    };
    let read: Arc<dyn ReadStore> = store;
    ProcessRunner::start(
        read,
        dispatcher,
        Arc::new(SystemClock),
        OrderFulfilment,
        config,
    )
    .await
    .expect("start the order_fulfilment process manager")
}
