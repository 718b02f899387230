//! Sessions (for form tokens and flash messages) kept in memory, with a bound: a client that
//! never sends its cookie back cannot make the server remember sessions without end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tower_sessions::cookie::time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

/// Sessions remembered at once; past this the ones closest to expiry are dropped first.
pub const MAX_SESSIONS: usize = 20_000;

#[derive(Debug, Clone, Default)]
pub struct BoundedMemoryStore {
    records: Arc<Mutex<HashMap<Id, Record>>>,
}

impl BoundedMemoryStore {
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Id, Record>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn make_room(records: &mut HashMap<Id, Record>) {
    if records.len() < MAX_SESSIONS {
        return;
    }
    let now = OffsetDateTime::now_utc();
    records.retain(|_, record| record.expiry_date > now);
    if records.len() >= MAX_SESSIONS {
        let mut by_expiry: Vec<(OffsetDateTime, Id)> = records
            .iter()
            .map(|(id, record)| (record.expiry_date, *id))
            .collect();
        by_expiry.sort_unstable_by_key(|(expiry, _)| *expiry);
        for (_, id) in by_expiry.into_iter().take(MAX_SESSIONS / 10) {
            records.remove(&id);
        }
    }
}

#[async_trait]
impl SessionStore for BoundedMemoryStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let mut records = self.lock();
        while records.contains_key(&record.id) {
            record.id = Id::default();
        }
        make_room(&mut records);
        records.insert(record.id, record.clone());
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let mut records = self.lock();
        if !records.contains_key(&record.id) {
            make_room(&mut records);
        }
        records.insert(record.id, record.clone());
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let now = OffsetDateTime::now_utc();
        Ok(self
            .lock()
            .get(id)
            .filter(|record| record.expiry_date > now)
            .cloned())
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.lock().remove(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_sessions::cookie::time::Duration;

    #[tokio::test]
    async fn the_store_never_grows_past_its_bound() {
        let store = BoundedMemoryStore::default();
        for n in 0..(MAX_SESSIONS + 500) {
            let mut record = Record {
                id: Id::default(),
                data: Default::default(),
                expiry_date: OffsetDateTime::now_utc() + Duration::seconds(3600 + n as i64),
            };
            store.create(&mut record).await.unwrap();
        }
        assert!(store.len() <= MAX_SESSIONS);
    }
}
