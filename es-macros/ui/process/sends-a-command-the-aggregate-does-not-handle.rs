use es_core::process::{Dispatch, Process};
use es_core::{aggregate, process_manager, Command, Envelope, Event};
use serde::{Deserialize, Serialize};

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "author.suspended")]
pub struct AuthorSuspended;

#[derive(Event, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[event(name = "draft.archived")]
pub struct DraftArchived;

#[derive(Command, Clone, Debug)]
pub struct ArchiveDraft;

#[derive(Command, Clone, Debug)]
pub struct DeleteDraft;

#[derive(Debug, thiserror::Error)]
#[error("never")]
pub struct Never;

#[aggregate(name = "draft", id = String, error = Never)]
#[derive(Default, Debug)]
pub struct Draft;

#[aggregate]
impl Draft {
    #[handle]
    fn archive(&self, _: ArchiveDraft) -> Result<DraftArchived, Never> {
        Ok(DraftArchived)
    }

    #[apply]
    fn archived(&mut self, _: &DraftArchived) {}
}

#[process_manager]
pub struct Janitor;

#[process_manager]
impl Janitor {
    #[on]
    fn suspended(&self, event: &Envelope<AuthorSuspended>, _process: &mut Process<'_, ()>) -> Dispatch {
        Dispatch::to::<Draft>(event.aggregate_id().to_owned(), DeleteDraft)
    }
}

fn main() {}
