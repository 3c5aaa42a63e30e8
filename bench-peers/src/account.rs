//! The bank account of the compare bench (es-tests' `benches/compare/ours.rs`) with cqrs-es 0.5,
//! written the way its documentation shows.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize)]
pub enum AccountCommand {
    Open { owner: String },
    Deposit { amount: u64 },
    Withdraw { amount: u64 },
    DepositMany { count: u64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: u64 },
    Withdrawn { amount: u64 },
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        match self {
            AccountEvent::Opened { .. } => "Opened",
            AccountEvent::Deposited { .. } => "Deposited",
            AccountEvent::Withdrawn { .. } => "Withdrawn",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("already open")]
    AlreadyOpen,
    #[error("not open")]
    NotOpen,
    #[error("insufficient funds")]
    InsufficientFunds,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Account {
    open: bool,
    balance: u64,
}

impl Account {
    pub fn balance(&self) -> u64 {
        self.balance
    }
}

impl Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = ();

    async fn handle(
        &mut self,
        command: AccountCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        match command {
            AccountCommand::Open { owner } => {
                if self.open {
                    return Err(AccountError::AlreadyOpen);
                }
                sink.write(AccountEvent::Opened { owner }, self).await;
            }
            AccountCommand::Deposit { amount } => {
                if !self.open {
                    return Err(AccountError::NotOpen);
                }
                sink.write(AccountEvent::Deposited { amount }, self).await;
            }
            AccountCommand::Withdraw { amount } => {
                if amount > self.balance {
                    return Err(AccountError::InsufficientFunds);
                }
                sink.write(AccountEvent::Withdrawn { amount }, self).await;
            }
            AccountCommand::DepositMany { count } => {
                for _ in 0..count {
                    sink.write(AccountEvent::Deposited { amount: 1 }, self)
                        .await;
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: AccountEvent) {
        match event {
            AccountEvent::Opened { .. } => self.open = true,
            AccountEvent::Deposited { amount } => self.balance += amount,
            AccountEvent::Withdrawn { amount } => self.balance -= amount,
        }
    }
}
