//! What the workspace tests and the benchmark share: a small bank domain, store factories
//! that know when a missing service is a failure, a call-counting store wrapper, one with a
//! database server's latency, and what the crash tests' child process runs (an appender,
//! the projection daemon, a process manager).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support: failing loudly is the point

pub mod bank;
pub mod child;
pub mod counting;
pub mod crash;
pub mod faults;
pub mod latency;
pub mod nats;
pub mod process;
pub mod stores;
pub mod writers;
