//! Read models of the in-memory store: documents in ordered maps, one lock, and a batch
//! transaction that applies its changes all at once at commit.

use std::collections::{BTreeMap, HashMap};
use std::sync::{MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::envelope::Payload;
use crate::error::StoreError;
use crate::read::store::{
    DeadLetter, DocumentRow, DocumentTable, DocumentWrite, GenerationState, GenerationStatus,
    ListQuery, ReadStore, ReadTx, Stopped,
};
use crate::store::memory::MemoryStore;

/// Everything the memory store keeps for projections.
#[derive(Debug, Default)]
pub(crate) struct ReadModels {
    generations: BTreeMap<(String, u32), GenerationState>,
    tables: HashMap<(String, u32), Table>,
    dead_letters: BTreeMap<(String, u64), DeadLetter>,
    leases: HashMap<String, (String, Instant)>,
}

#[derive(Debug, Default)]
struct Table {
    /// Key → (body, indexed values).
    rows: BTreeMap<String, (Payload, Vec<Option<String>>)>,
}

fn key_of(table: &DocumentTable) -> (String, u32) {
    (table.projection.clone(), table.generation)
}

impl ReadModels {
    /// Makes generation `key` its projection's live one and drops the others.
    fn make_live(&mut self, key: &(String, u32)) {
        let others: Vec<_> = self
            .generations
            .keys()
            .filter(|(projection, generation)| *projection == key.0 && *generation != key.1)
            .cloned()
            .collect();
        for other in others {
            self.generations.remove(&other);
            self.tables.remove(&other);
        }
        if let Some(state) = self.generations.get_mut(key) {
            state.status = GenerationStatus::Live;
        }
    }

    fn live_generation(&self, projection: &str) -> Option<u32> {
        self.generations
            .values()
            .find(|state| state.projection == projection && state.status == GenerationStatus::Live)
            .map(|state| state.generation)
    }
}

impl MemoryStore {
    fn read_models(&self) -> MutexGuard<'_, ReadModels> {
        // Every change below is applied whole before the guard drops; a panic elsewhere
        // cannot leave the maps half-changed, so a poisoned lock is safe to use.
        self.read_models
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl ReadStore for MemoryStore {
    async fn generations(&self, projection: &str) -> Result<Vec<GenerationState>, StoreError> {
        Ok(self
            .read_models()
            .generations
            .values()
            .filter(|state| state.projection == projection)
            .cloned()
            .collect())
    }

    async fn create_generation(
        &self,
        table: &DocumentTable,
        version: &str,
    ) -> Result<GenerationState, StoreError> {
        let mut models = self.read_models();
        if let Some(existing) = models.generations.get(&key_of(table)) {
            return Ok(existing.clone());
        }
        let first = !models
            .generations
            .keys()
            .any(|(projection, _)| *projection == table.projection);
        let state = GenerationState::created(table, version, first);
        models.generations.insert(key_of(table), state.clone());
        models.tables.entry(key_of(table)).or_default();
        Ok(state)
    }

    async fn promote(&self, table: &DocumentTable) -> Result<(), StoreError> {
        let mut models = self.read_models();
        let key = key_of(table);
        if !models.generations.contains_key(&key) {
            return Err(gone(&key));
        }
        models.make_live(&key);
        Ok(())
    }

    async fn begin(&self) -> Result<Box<dyn ReadTx + '_>, StoreError> {
        Ok(Box::new(MemoryReadTx {
            store: self,
            append: None,
            writes: Vec::new(),
            checkpoints: Vec::new(),
            stops: Vec::new(),
            added: Vec::new(),
            removed: Vec::new(),
            observed: Vec::new(),
            promotion: None,
            read_to: None,
        }))
    }

    async fn get_document(
        &self,
        table: &DocumentTable,
        key: &str,
    ) -> Result<Option<DocumentRow>, StoreError> {
        Ok(self
            .read_models()
            .tables
            .get(&key_of(table))
            .and_then(|rows| rows.rows.get(key))
            .map(|(body, _)| DocumentRow {
                key: key.to_owned(),
                body: body.clone(),
            }))
    }

    async fn list_documents(
        &self,
        table: &DocumentTable,
        query: &ListQuery,
    ) -> Result<Vec<DocumentRow>, StoreError> {
        let models = self.read_models();
        let Some(rows) = models.tables.get(&key_of(table)) else {
            return Ok(Vec::new());
        };
        let matches = |values: &Vec<Option<String>>| match &query.filter {
            Some((index, value)) => {
                values.get(*index).and_then(Option::as_deref) == Some(value.as_str())
            }
            None => true,
        };
        if let Some(order) = &query.order {
            // A scan and a sort: the memory store is for tests and small read models.
            let mut ordered: Vec<(&String, &String, &Payload)> = rows
                .rows
                .iter()
                .filter(|(_, (_, values))| matches(values))
                .filter_map(|(key, (body, values))| {
                    let value = values.get(order.index)?.as_ref()?;
                    Some((value, key, body))
                })
                .collect();
            ordered.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
            if order.descending {
                ordered.reverse();
            }
            let after = |row: &(&String, &String, &Payload)| match &order.after {
                None => true,
                Some((value, key)) => {
                    let position = (row.0, row.1).cmp(&(value, key));
                    if order.descending {
                        position.is_lt()
                    } else {
                        position.is_gt()
                    }
                }
            };
            return Ok(ordered
                .into_iter()
                .filter(after)
                .take(query.limit)
                .map(|(_, key, body)| DocumentRow {
                    key: key.clone(),
                    body: body.clone(),
                })
                .collect());
        }
        let range = match &query.after {
            Some(after) => rows.rows.range::<String, _>((
                std::ops::Bound::Excluded(after.clone()),
                std::ops::Bound::Unbounded,
            )),
            None => rows.rows.range::<String, _>(..),
        };
        Ok(range
            .filter(|(_, (_, values))| matches(values))
            .take(query.limit)
            .map(|(key, (body, _))| DocumentRow {
                key: key.clone(),
                body: body.clone(),
            })
            .collect())
    }

    async fn dead_letters(&self, projection: &str) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(self
            .read_models()
            .dead_letters
            .values()
            .filter(|letter| letter.projection == projection)
            .cloned()
            .collect())
    }

    async fn acquire_lease(
        &self,
        projection: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<String, StoreError> {
        let mut models = self.read_models();
        let now = Instant::now();
        let entry = models
            .leases
            .entry(projection.to_owned())
            .or_insert_with(|| (holder.to_owned(), now));
        if entry.0 == holder || entry.1 <= now {
            *entry = (holder.to_owned(), now + ttl);
        }
        Ok(entry.0.clone())
    }

    async fn lease_holder(&self, projection: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .read_models()
            .leases
            .get(projection)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(holder, _)| holder.clone()))
    }

    async fn release_lease(&self, projection: &str, holder: &str) -> Result<(), StoreError> {
        let mut models = self.read_models();
        if models
            .leases
            .get(projection)
            .is_some_and(|(current, _)| current == holder)
        {
            models.leases.remove(projection);
        }
        Ok(())
    }

    fn append_signal(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.appended.0.subscribe())
    }
}

/// Collects a batch's changes; `commit` checks every checkpoint and applies all under one lock.
///
/// Nothing here waits: where the SQL stores make a swap and the inline writes around it
/// take turns on a lock, this transaction checks at commit that its view still holds
/// (the generations it read are still live; for a swap, no event came after its read) and
/// fails otherwise, for the caller to try again.
struct MemoryReadTx<'a> {
    store: &'a MemoryStore,
    /// An append to make at commit, with what it expected of the log when its records were
    /// worked out (positions, versions): the commit refuses it if the log moved meanwhile.
    append: Option<PendingAppend>,
    writes: Vec<((String, u32), Vec<DocumentWrite>)>,
    checkpoints: Vec<((String, u32), u64, u64)>,
    stops: Vec<((String, u32), Option<Stopped>)>,
    added: Vec<DeadLetter>,
    removed: Vec<(String, u64)>,
    /// Live generations read with `live_generation`: they must still be live at commit.
    observed: Vec<(String, u32)>,
    /// The generation to make live at commit.
    promotion: Option<(String, u32)>,
    /// The log's length at the last `read_all`.
    read_to: Option<usize>,
}

/// What [`MemoryReadTx::append`] promised, to be made good at commit.
struct PendingAppend {
    stream: crate::stream::StreamId,
    expected: crate::store::ExpectedVersion,
    records: Vec<crate::envelope::RecordedEvent>,
    /// The log's length when the records were worked out.
    log_length: usize,
}

#[async_trait]
impl ReadTx for MemoryReadTx<'_> {
    async fn append(
        &mut self,
        stream: &crate::stream::StreamId,
        expected: crate::store::ExpectedVersion,
        events: Vec<crate::envelope::NewEvent>,
    ) -> Result<Vec<crate::envelope::RecordedEvent>, StoreError> {
        crate::limits::check_append(stream, &events)?;
        // Works the records out now, as the log stands; the commit appends them only if the
        // log has not moved since (otherwise a conflict: the caller decides again).
        let (records, log_length, already) = self.store.prepare_append(stream, expected, events)?;
        if !already {
            self.append = Some(PendingAppend {
                stream: stream.clone(),
                expected,
                records: records.clone(),
                log_length,
            });
        }
        Ok(records)
    }

    async fn load(
        &mut self,
        table: &DocumentTable,
        keys: &[String],
    ) -> Result<Vec<DocumentRow>, StoreError> {
        let models = self.store.read_models();
        let Some(rows) = models.tables.get(&key_of(table)) else {
            return Ok(Vec::new());
        };
        Ok(keys
            .iter()
            .filter_map(|key| {
                rows.rows.get(key).map(|(body, _)| DocumentRow {
                    key: key.clone(),
                    body: body.clone(),
                })
            })
            .collect())
    }

    async fn write(
        &mut self,
        table: &DocumentTable,
        writes: Vec<DocumentWrite>,
    ) -> Result<(), StoreError> {
        self.writes.push((key_of(table), writes));
        Ok(())
    }

    async fn advance(
        &mut self,
        table: &DocumentTable,
        from: u64,
        to: u64,
    ) -> Result<(), StoreError> {
        self.checkpoints.push((key_of(table), from, to));
        Ok(())
    }

    async fn live_generation(&mut self, projection: &str) -> Result<Option<u32>, StoreError> {
        let live = self.store.read_models().live_generation(projection);
        if let Some(generation) = live {
            self.observed.push((projection.to_owned(), generation));
        }
        Ok(live)
    }

    async fn read_all(
        &mut self,
        from_position: u64,
        limit: usize,
    ) -> Result<Vec<crate::envelope::RecordedEvent>, StoreError> {
        let (events, length) = self.store.read_all_at(from_position, limit);
        self.read_to = Some(length);
        Ok(events)
    }

    async fn promote(&mut self, table: &DocumentTable) -> Result<(), StoreError> {
        if !self
            .store
            .read_models()
            .generations
            .contains_key(&key_of(table))
        {
            return Err(gone(&key_of(table)));
        }
        self.promotion = Some(key_of(table));
        Ok(())
    }

    async fn set_stopped(
        &mut self,
        table: &DocumentTable,
        stopped: Option<&Stopped>,
    ) -> Result<(), StoreError> {
        self.stops.push((key_of(table), stopped.cloned()));
        Ok(())
    }

    async fn add_dead_letter(&mut self, letter: &DeadLetter) -> Result<(), StoreError> {
        self.added.push(letter.clone());
        Ok(())
    }

    async fn remove_dead_letter(
        &mut self,
        projection: &str,
        position: u64,
    ) -> Result<bool, StoreError> {
        let present = self
            .store
            .read_models()
            .dead_letters
            .contains_key(&(projection.to_owned(), position));
        if present {
            self.removed.push((projection.to_owned(), position));
        }
        Ok(present)
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        // The log's lock first, then the read models': the same order as everywhere else.
        // A swap holds the log too, so no append commits between its checks and its swap.
        let mut log =
            (self.append.is_some() || self.promotion.is_some()).then(|| self.store.lock_log());
        if let (Some(log), Some(pending)) = (log.as_deref(), &self.append) {
            MemoryStore::check_unmoved(log, &pending.stream, pending.expected, pending.log_length)?;
        }
        let mut models = self.store.read_models();
        for key in &self.observed {
            // A swap committed since: these writes would land in the retired generation.
            if models.live_generation(&key.0) != Some(key.1) {
                return Err(gone(key));
            }
        }
        if let Some(key) = &self.promotion {
            let Some(state) = models.generations.get(key) else {
                return Err(gone(key));
            };
            let length = log.as_deref().map_or(0, MemoryStore::log_length);
            if let Some(read_to) = self.read_to.filter(|read_to| *read_to != length) {
                // Events (perhaps written inline to the old generation) came after what this
                // swap read and applied: it would lose them. Catch up and swap again.
                return Err(StoreError::CheckpointMoved {
                    projection: key.0.clone(),
                    generation: key.1,
                    expected: read_to as u64 + 1,
                    actual: Some(state.checkpoint),
                });
            }
        }
        // Check everything first, so a refused commit changes nothing.
        for ((projection, generation), from, _) in &self.checkpoints {
            let actual = models
                .generations
                .get(&(projection.clone(), *generation))
                .map(|state| state.checkpoint);
            if actual != Some(*from) {
                return Err(StoreError::CheckpointMoved {
                    projection: projection.clone(),
                    generation: *generation,
                    expected: *from,
                    actual,
                });
            }
        }
        for (projection, position) in &self.removed {
            if !models
                .dead_letters
                .contains_key(&(projection.clone(), *position))
            {
                return Err(StoreError::NoDeadLetter {
                    projection: projection.clone(),
                    position: *position,
                });
            }
        }
        for (key, writes) in self.writes {
            let table = models.tables.entry(key).or_default();
            for write in writes {
                match write.body {
                    Some(body) => {
                        table.rows.insert(write.key, (body, write.index_values));
                    }
                    None => {
                        table.rows.remove(&write.key);
                    }
                }
            }
        }
        for (key, _, to) in self.checkpoints {
            if let Some(state) = models.generations.get_mut(&key) {
                state.checkpoint = to;
            }
        }
        for (key, stopped) in self.stops {
            if let Some(state) = models.generations.get_mut(&key) {
                state.stopped = stopped;
            }
        }
        for letter in self.added {
            models
                .dead_letters
                .insert((letter.projection.clone(), letter.position), letter);
        }
        for key in self.removed {
            models.dead_letters.remove(&key);
        }
        if let Some(key) = &self.promotion {
            models.make_live(key);
        }
        if let (Some(log), Some(pending)) = (log.as_deref_mut(), self.append) {
            self.store
                .push_records(log, &pending.stream, pending.records);
        }
        Ok(())
    }
}

/// What a transaction hears when a generation it used is no longer there (or no longer live):
/// a rebuild swapped it out.
fn gone((projection, generation): &(String, u32)) -> StoreError {
    StoreError::CheckpointMoved {
        projection: projection.clone(),
        generation: *generation,
        expected: 0,
        actual: None,
    }
}
