//! A bounded cache of TokenReview results (positive or negative), keyed by the token's
//! SHA-256.

use std::collections::HashMap;
use std::sync::Mutex;

use time::OffsetDateTime;

#[derive(Debug)]
pub(crate) struct Cache<V> {
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], Entry<V>>>,
}

#[derive(Debug)]
struct Entry<V> {
    value: V,
    expires_at: OffsetDateTime,
}

impl<V: Clone> Cache<V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The cached result, if it has not expired at `now`.
    pub(crate) fn get(&self, key: &[u8; 32], now: OffsetDateTime) -> Option<V> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(key) {
            Some(e) if now < e.expires_at => Some(e.value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Caches `value` until `expires_at`. When full, expired entries go first, then the one
    /// that expires soonest.
    pub(crate) fn insert(
        &self,
        key: [u8; 32],
        value: V,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) {
        if self.capacity == 0 || expires_at <= now {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, e| now < e.expires_at);
            if entries.len() >= self.capacity {
                let soonest = entries
                    .iter()
                    .min_by_key(|(_, e)| e.expires_at)
                    .map(|(k, _)| *k);
                if let Some(k) = soonest {
                    entries.remove(&k);
                }
            }
        }
        entries.insert(key, Entry { value, expires_at });
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use meshid_policy::ServiceAccount;
    use time::macros::datetime;

    use super::*;
    use crate::Authenticated;

    fn value(name: &str) -> Authenticated {
        Authenticated::new(ServiceAccount::new("ns", name).unwrap())
    }

    #[test]
    fn expires_and_evicts_the_soonest() {
        let now = datetime!(2026-06-01 0:00 UTC);
        let cache = Cache::new(2);
        cache.insert([1; 32], value("a"), now + time::Duration::seconds(30), now);
        cache.insert([2; 32], value("b"), now + time::Duration::seconds(10), now);
        cache.insert([3; 32], value("c"), now + time::Duration::seconds(20), now);
        assert_eq!(cache.len(), 2);
        assert!(
            cache.get(&[2; 32], now).is_none(),
            "the soonest to expire was evicted"
        );
        assert_eq!(cache.get(&[1; 32], now), Some(value("a")));
        let later = now + time::Duration::seconds(25);
        assert!(cache.get(&[3; 32], later).is_none());
        assert_eq!(cache.len(), 1);
        // Already expired: not cached.
        cache.insert([4; 32], value("d"), later, later);
        assert!(cache.get(&[4; 32], later).is_none());
    }
}
