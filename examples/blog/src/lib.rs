//! The blog: posts and authors as event-sourced aggregates, with read models built from them.
#![forbid(unsafe_code)]

pub mod app;
pub mod author;
pub mod duration;
pub mod janitor;
pub mod outbox;
pub mod post;
pub mod progress;
pub mod read_models;
pub mod report;
pub mod scenario;
pub mod seed;
pub mod tags;
