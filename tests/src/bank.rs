//! A small bank-account domain shared by the workspace tests.

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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("the account is already open")]
    AlreadyOpen,
    #[error("the account is not open")]
    NotOpen,
    #[error("insufficient funds: balance {balance}, requested {requested}")]
    InsufficientFunds { balance: u64, requested: u64 },
}

#[aggregate(name = "account", id = String, error = AccountError, snapshot_every = 100)]
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub open: bool,
    pub balance: u64,
    pub operations: u64,
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
        if !self.open {
            return Err(AccountError::NotOpen);
        }
        if command.amount > self.balance {
            return Err(AccountError::InsufficientFunds {
                balance: self.balance,
                requested: command.amount,
            });
        }
        Ok(Withdrawn {
            amount: command.amount,
        })
    }

    #[apply]
    fn opened(&mut self, _: &Opened) {
        self.open = true;
    }

    #[apply]
    fn deposited(&mut self, event: &Deposited) {
        self.balance += event.amount;
        self.operations += 1;
    }

    #[apply]
    fn withdrawn(&mut self, event: &Withdrawn) {
        self.balance -= event.amount;
        self.operations += 1;
    }
}
