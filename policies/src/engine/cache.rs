//! The decision cache: bounded, shared by every session (sharded mutexes), LRU-ish (two
//! generations per shard: a hit in the old generation is promoted; when the young one is full
//! the old one is dropped). Keys are built by the engine from everything a decision depends on
//! (kind, user, target, session state, context bits the policies read, and the statement's
//! key from `sql_cache_key`), so a hit returns exactly what deciding again would.
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use super::model::Verdict;

const SHARDS: usize = 16;

/// A cached decision and the exact text it was made for (to reuse its redaction).
#[derive(Debug, Clone)]
pub(crate) struct CachedVerdict {
    /// The text decided on.
    pub text: String,
    /// The verdict for it.
    pub verdict: Verdict,
}

#[derive(Debug, Default)]
struct Shard {
    young: HashMap<String, CachedVerdict>,
    old: HashMap<String, CachedVerdict>,
}

/// Bounded, thread-safe map from decision keys to verdicts.
#[derive(Debug)]
pub(crate) struct DecisionCache {
    per_generation: usize,
    shards: Vec<Mutex<Shard>>,
}

impl DecisionCache {
    /// A cache holding at most about `capacity` verdicts; 0 disables it.
    pub(crate) fn new(capacity: usize) -> DecisionCache {
        let shards = if capacity == 0 { 0 } else { SHARDS };
        DecisionCache {
            per_generation: capacity.div_ceil(2 * SHARDS).max(1),
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }

    fn shard(&self, key: &str) -> Option<&Mutex<Shard>> {
        if self.shards.is_empty() {
            return None;
        }
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let index = usize::try_from(hasher.finish() % (self.shards.len() as u64)).unwrap_or(0);
        self.shards.get(index)
    }

    /// The cached verdict for `key`, if any.
    pub(crate) fn get(&self, key: &str) -> Option<CachedVerdict> {
        let mut shard = self.shard(key)?.lock().ok()?;
        if let Some(hit) = shard.young.get(key) {
            return Some(hit.clone());
        }
        let hit = shard.old.remove(key)?;
        insert_young(
            &mut shard,
            self.per_generation,
            key.to_string(),
            hit.clone(),
        );
        Some(hit)
    }

    /// Remember `value` under `key`.
    pub(crate) fn put(&self, key: String, value: CachedVerdict) {
        let Some(shard) = self.shard(&key) else {
            return;
        };
        if let Ok(mut shard) = shard.lock() {
            insert_young(&mut shard, self.per_generation, key, value);
        }
    }

    /// Number of cached verdicts.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .filter_map(|s| s.lock().ok().map(|s| s.young.len() + s.old.len()))
            .sum()
    }
}

fn insert_young(shard: &mut Shard, per_generation: usize, key: String, value: CachedVerdict) {
    if shard.young.len() >= per_generation && !shard.young.contains_key(&key) {
        shard.old = std::mem::take(&mut shard.young);
    }
    shard.young.insert(key, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::Decision;

    fn verdict() -> Verdict {
        Verdict {
            decision: Decision::Allow,
            step_up: None,
            policy_ids: vec![],
            message: String::new(),
            approver_groups: vec![],
            class: String::new(),
            objects: vec![],
            risk_tags: vec![],
            redacted_text: String::new(),
            fingerprint: String::new(),
            facts: serde_json::Value::Null,
            shadow: None,
            matched: vec![],
        }
    }

    #[test]
    fn stays_bounded_and_keeps_recent_entries() {
        let cache = DecisionCache::new(64);
        for i in 0..10_000 {
            cache.put(
                format!("k{i}"),
                CachedVerdict {
                    text: String::new(),
                    verdict: verdict(),
                },
            );
        }
        assert!(cache.len() <= 64, "{}", cache.len());
        assert!(cache.get("k9999").is_some());
        assert!(cache.get("k0").is_none());
    }

    #[test]
    fn zero_capacity_disables() {
        let cache = DecisionCache::new(0);
        cache.put(
            "k".into(),
            CachedVerdict {
                text: String::new(),
                verdict: verdict(),
            },
        );
        assert!(cache.get("k").is_none());
    }
}
