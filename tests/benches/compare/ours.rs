//! The bank account with this framework's macros.

use es_core::{aggregate, Command, Event};
use serde::{Deserialize, Serialize};

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "account.opened")]
pub struct Opened {
    pub owner: String,
}

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "account.deposited")]
pub struct Deposited {
    pub amount: u64,
}

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "account.withdrawn")]
pub struct Withdrawn {
    pub amount: u64,
}

#[derive(Command, Clone, Debug)]
pub struct Open {
    pub owner: String,
}

#[derive(Command, Clone, Debug)]
pub struct Deposit {
    pub amount: u64,
}

#[derive(Command, Clone, Debug)]
pub struct Withdraw {
    pub amount: u64,
}

/// Deposits `count` events in one command (figure 4).
#[derive(Command, Clone, Debug)]
pub struct DepositMany {
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("already open")]
    AlreadyOpen,
    #[error("not open")]
    NotOpen,
    #[error("insufficient funds")]
    InsufficientFunds,
}

#[aggregate(name = "account", id = String, error = AccountError)]
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    open: bool,
    balance: u64,
}

#[aggregate]
impl Account {
    #[handle]
    fn open(&self, command: Open) -> Result<Opened, AccountError> {
        if self.open {
            return Err(AccountError::AlreadyOpen);
        }
        Ok(Opened {
            owner: command.owner,
        })
    }

    #[handle]
    fn deposit(&self, command: Deposit) -> Result<Deposited, AccountError> {
        if !self.open {
            return Err(AccountError::NotOpen);
        }
        Ok(Deposited {
            amount: command.amount,
        })
    }

    #[handle]
    fn withdraw(&self, command: Withdraw) -> Result<Withdrawn, AccountError> {
        if command.amount > self.balance {
            return Err(AccountError::InsufficientFunds);
        }
        Ok(Withdrawn {
            amount: command.amount,
        })
    }

    #[handle]
    fn deposit_many(&self, command: DepositMany) -> Result<Vec<AccountEvent>, AccountError> {
        Ok((0..command.count)
            .map(|_| Deposited { amount: 1 }.into())
            .collect())
    }

    #[apply]
    fn opened(&mut self, _: &Opened) {
        self.open = true;
    }

    #[apply]
    fn deposited(&mut self, event: &Deposited) {
        self.balance += event.amount;
    }

    #[apply]
    fn withdrawn(&mut self, event: &Withdrawn) {
        self.balance -= event.amount;
    }
}

/// The same account, snapshotting every 100 events (figure 4, "with a snapshot").
#[aggregate(name = "account", id = String, error = AccountError, snapshot_every = 100)]
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshottedAccount {
    open: bool,
    balance: u64,
}

#[aggregate]
impl SnapshottedAccount {
    #[handle]
    fn deposit_many(
        &self,
        command: DepositMany,
    ) -> Result<Vec<SnapshottedAccountEvent>, AccountError> {
        Ok((0..command.count)
            .map(|_| Deposited { amount: 1 }.into())
            .collect())
    }

    #[apply]
    fn opened(&mut self, _: &Opened) {
        self.open = true;
    }

    #[apply]
    fn deposited(&mut self, event: &Deposited) {
        self.balance += event.amount;
    }

    #[apply]
    fn withdrawn(&mut self, event: &Withdrawn) {
        self.balance -= event.amount;
    }
}

impl Account {
    pub fn balance(&self) -> u64 {
        self.balance
    }
}

impl SnapshottedAccount {
    pub fn balance(&self) -> u64 {
        self.balance
    }
}
