//! Guessing control: failed logins are counted per identity and per source address; after
//! `limits.lockout_after` failures the key is locked for `limits.lockout_for`, and every failure
//! before that costs an exponentially growing delay (100 ms, 200 ms, … capped at 5 s) so online
//! guessing is slow even below the lockout threshold. A success clears the identity's count.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    Identity(String),
    Source(IpAddr),
}

#[derive(Debug, Clone)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// A lockout as the admin API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LockoutStatus {
    /// `identity:<name>` or `source:<ip>`.
    pub key: String,
    /// Failures counted.
    pub failures: u32,
    /// Seconds until the lock lifts (0 when not locked).
    pub locked_for_secs: u64,
}

/// Failure counts and locks.
#[derive(Debug)]
pub struct Lockouts {
    after: u32,
    lock_for: Duration,
    map: Mutex<HashMap<Key, Failures>>,
}

impl Lockouts {
    /// Locks after `after` failures for `lock_for`.
    pub fn new(after: u32, lock_for: Duration) -> Lockouts {
        Lockouts {
            after: after.max(1),
            lock_for,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn keys(identity: &str, source: IpAddr) -> [Key; 2] {
        [Key::Identity(identity.to_string()), Key::Source(source)]
    }

    /// `Err(remaining)` when the identity or the source is locked out now.
    pub fn check(&self, identity: &str, source: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let remaining = Self::keys(identity, source)
            .iter()
            .filter_map(|k| map.get(k)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max();
        match remaining {
            Some(r) => Err(r),
            None => Ok(()),
        }
    }

    /// Counts a failure; returns the delay to impose before answering.
    pub fn failure(&self, identity: &str, source: IpAddr) -> Duration {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let mut worst = 0;
        for key in Self::keys(identity, source) {
            let f = map.entry(key).or_insert(Failures {
                count: 0,
                last: now,
                locked_until: None,
            });
            if f.locked_until.is_some_and(|u| u <= now) {
                f.count = 0;
                f.locked_until = None;
            }
            f.count += 1;
            f.last = now;
            if f.count >= self.after {
                f.locked_until = Some(now + self.lock_for);
            }
            worst = worst.max(f.count);
        }
        let exp = worst.saturating_sub(1).min(6);
        Duration::from_millis(100u64 << exp).min(Duration::from_secs(5))
    }

    /// A successful login clears the identity's failures (the source's stay: one source guessing
    /// many identities keeps its count).
    pub fn success(&self, identity: &str) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&Key::Identity(identity.to_string()));
    }

    /// Current counts and locks.
    pub fn list(&self) -> Vec<LockoutStatus> {
        let now = Instant::now();
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<_> = map
            .iter()
            .map(|(k, f)| LockoutStatus {
                key: match k {
                    Key::Identity(n) => format!("identity:{n}"),
                    Key::Source(ip) => format!("source:{ip}"),
                },
                failures: f.count,
                locked_for_secs: f
                    .locked_until
                    .filter(|u| *u > now)
                    .map(|u| (u - now).as_secs())
                    .unwrap_or(0),
            })
            .collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }

    /// Clears every count and lock; returns how many keys were cleared.
    pub fn clear(&self) -> usize {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.len();
        map.clear();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_threshold_for_identity_and_source() {
        let l = Lockouts::new(3, Duration::from_secs(60));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(l.check("alice", ip).is_ok());
        l.failure("alice", ip);
        l.failure("alice", ip);
        assert!(l.check("alice", ip).is_ok());
        l.failure("alice", ip);
        assert!(l.check("alice", ip).is_err());
        // Another identity from the same source is locked too; the same identity elsewhere too.
        assert!(l.check("bob", ip).is_err());
        assert!(l.check("alice", "10.0.0.1".parse().unwrap()).is_err());
        assert_eq!(l.clear(), 2);
        assert!(l.check("alice", ip).is_ok());
    }

    #[test]
    fn success_clears_identity_count() {
        let l = Lockouts::new(2, Duration::from_secs(60));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        l.failure("alice", ip);
        l.success("alice");
        let ip2: IpAddr = "127.0.0.2".parse().unwrap();
        l.failure("alice", ip2);
        assert!(l.check("alice", ip2).is_ok());
    }
}
