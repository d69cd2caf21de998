//! Entry risk signals (issue 10): flags raised on an `entries` row, never a refusal by
//! themselves. `new_source` — the first successful entry of an identity from an address (the
//! addresses seen are kept in `<state_dir>/entry_sources.json`, so a restart does not make every
//! source new again); `failure_burst` — at least [`BURST_FAILURES`] failed attempts for the
//! identity or from the source within [`BURST_WINDOW_SECS`] (on the failures from the third on,
//! and on a success that follows such a burst); `outside_hours` — a success outside the
//! identity's `allowed_hours`; `revoked_token_reuse` — a revoked token presented again (raised
//! by the token check). The recorder's `entries` table has no column for flags, so they are
//! written into its `reason` text as `[risk: new_source, failure_burst]` (see
//! docs/identities.md), where `bastion audit query` can filter with `LIKE '%risk:%'`.
use crate::admin::private_file::write_private_file;
use crate::config::HourWindow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Failures within the window that make a burst.
pub const BURST_FAILURES: usize = 3;
/// The burst window.
pub const BURST_WINDOW_SECS: i64 = 300;
/// Addresses remembered per identity (the oldest are forgotten first).
const MAX_SOURCES_PER_IDENTITY: usize = 256;
/// Keys (identities and sources) with failures remembered; beyond this the oldest go.
const MAX_FAILURE_KEYS: usize = 10_000;

/// One risk flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RiskFlag {
    /// First entry of the identity from this address.
    NewSource,
    /// A revoked token was presented again.
    RevokedTokenReuse,
    /// Many failures in a short time for the identity or from the source.
    FailureBurst,
    /// Entry outside the identity's `allowed_hours`.
    OutsideHours,
}

impl RiskFlag {
    /// The flag as written in the trail.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskFlag::NewSource => "new_source",
            RiskFlag::RevokedTokenReuse => "revoked_token_reuse",
            RiskFlag::FailureBurst => "failure_burst",
            RiskFlag::OutsideHours => "outside_hours",
        }
    }
}

/// `reason` with the flags appended as `[risk: a, b]` (or just `risk: a, b` when there is no
/// reason), merged with flags the reason already carries; unchanged when there are no flags.
pub fn annotate(reason: Option<String>, flags: &[RiskFlag]) -> Option<String> {
    if flags.is_empty() {
        return reason;
    }
    let mut names: Vec<String> = flags.iter().map(|f| f.as_str().to_string()).collect();
    let base = match reason {
        None => None,
        Some(r) => {
            if let Some(list) = r.strip_prefix("risk: ") {
                names.extend(list.split(", ").map(str::to_string));
                None
            } else if let Some((head, list)) = r
                .rsplit_once(" [risk: ")
                .and_then(|(h, t)| Some((h, t.strip_suffix(']')?)))
            {
                names.extend(list.split(", ").map(str::to_string));
                Some(head.to_string())
            } else {
                Some(r)
            }
        }
    };
    names.sort_unstable();
    names.dedup();
    let list = names.join(", ");
    Some(match base {
        Some(r) => format!("{r} [risk: {list}]"),
        None => format!("risk: {list}"),
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum FailureKey {
    Identity(String),
    Source(IpAddr),
}

/// Seen sources and recent failures.
#[derive(Debug)]
pub struct RiskSignals {
    sources_path: PathBuf,
    sources: Mutex<BTreeMap<String, Vec<IpAddr>>>,
    failures: Mutex<HashMap<FailureKey, VecDeque<i64>>>,
}

impl RiskSignals {
    /// Loads the seen sources of `state_dir` (an unreadable file starts empty, logged).
    pub fn open(state_dir: &Path) -> RiskSignals {
        let sources_path = state_dir.join("entry_sources.json");
        let sources = match std::fs::read(&sources_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %sources_path.display(), error = %e, "entry sources unreadable; every source counts as new");
                BTreeMap::new()
            }),
            Err(_) => BTreeMap::new(),
        };
        RiskSignals {
            sources_path,
            sources: Mutex::new(sources),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Flags for a successful entry of `identity` from `source` at `now`; remembers the source.
    pub fn success(
        &self,
        identity: &str,
        source: IpAddr,
        hours: Option<HourWindow>,
        now: i64,
    ) -> Vec<RiskFlag> {
        let mut flags = Vec::new();
        {
            let mut seen = self.sources.lock().unwrap_or_else(|e| e.into_inner());
            let list = seen.entry(identity.to_string()).or_default();
            if !list.contains(&source) {
                flags.push(RiskFlag::NewSource);
                list.push(source);
                if list.len() > MAX_SOURCES_PER_IDENTITY {
                    list.remove(0);
                }
                match serde_json::to_vec_pretty(&*seen) {
                    Ok(bytes) => {
                        if let Err(e) = write_private_file(&self.sources_path, &bytes) {
                            tracing::warn!(error = %e, "cannot persist entry sources");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot persist entry sources"),
                }
            }
        }
        let keys = [
            FailureKey::Identity(identity.to_string()),
            FailureKey::Source(source),
        ];
        if self.recent_failures(&keys, now) >= BURST_FAILURES {
            flags.push(RiskFlag::FailureBurst);
        }
        if hours.is_some_and(|h| !h.contains(now)) {
            flags.push(RiskFlag::OutsideHours);
        }
        flags
    }

    /// Counts a failed attempt; flags it when it is part of a burst.
    pub fn failure(&self, identity: &str, source: IpAddr, now: i64) -> Vec<RiskFlag> {
        let keys = [
            FailureKey::Identity(identity.to_string()),
            FailureKey::Source(source),
        ];
        {
            let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() >= MAX_FAILURE_KEYS {
                map.retain(|_, times| times.back().is_some_and(|t| now - t < BURST_WINDOW_SECS));
            }
            for key in &keys {
                let times = map.entry(key.clone()).or_default();
                times.push_back(now);
                while times.len() > BURST_FAILURES * 4 {
                    times.pop_front();
                }
            }
        }
        if self.recent_failures(&keys, now) >= BURST_FAILURES {
            vec![RiskFlag::FailureBurst]
        } else {
            Vec::new()
        }
    }

    /// The largest number of failures within the window for any of `keys`.
    fn recent_failures(&self, keys: &[FailureKey], now: i64) -> usize {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .filter_map(|k| map.get(k))
            .map(|times| {
                times
                    .iter()
                    .filter(|t| now - **t < BURST_WINDOW_SECS)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn first_source_is_new_once_and_remembered_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let r = RiskSignals::open(dir.path());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(r.success("bot", ip, None, NOW), vec![RiskFlag::NewSource]);
        assert_eq!(r.success("bot", ip, None, NOW), vec![]);
        // Another identity from the same address is new for that identity.
        assert_eq!(r.success("alice", ip, None, NOW), vec![RiskFlag::NewSource]);
        let again = RiskSignals::open(dir.path());
        assert_eq!(again.success("bot", ip, None, NOW), vec![]);
        assert_eq!(
            again.success("bot", "10.0.0.2".parse().unwrap(), None, NOW),
            vec![RiskFlag::NewSource]
        );
    }

    #[test]
    fn bursts_of_failures_are_flagged_per_identity_and_per_source() {
        let dir = tempfile::tempdir().unwrap();
        let r = RiskSignals::open(dir.path());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(r.failure("bot", ip, NOW).is_empty());
        assert!(r.failure("bot", ip, NOW + 1).is_empty());
        assert_eq!(r.failure("bot", ip, NOW + 2), vec![RiskFlag::FailureBurst]);
        // A success right after the burst carries the flag too.
        assert!(r
            .success("bot", ip, None, NOW + 3)
            .contains(&RiskFlag::FailureBurst));
        // One source guessing many identities is a burst as well.
        let spray: IpAddr = "192.0.2.9".parse().unwrap();
        r.failure("a", spray, NOW);
        r.failure("b", spray, NOW);
        assert_eq!(r.failure("c", spray, NOW), vec![RiskFlag::FailureBurst]);
        // Outside the window it is no burst.
        let later = NOW + BURST_WINDOW_SECS + 10;
        assert!(r
            .failure("bot", "10.9.9.9".parse().unwrap(), later)
            .is_empty());
    }

    #[test]
    fn outside_hours_and_annotation() {
        let dir = tempfile::tempdir().unwrap();
        let r = RiskSignals::open(dir.path());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let office = HourWindow::parse("09:00-17:00").unwrap();
        let midnight = NOW / 86_400 * 86_400;
        let flags = r.success("bot", ip, Some(office), midnight + 3 * 3600);
        assert_eq!(flags, vec![RiskFlag::NewSource, RiskFlag::OutsideHours]);
        assert!(r
            .success("bot", ip, Some(office), midnight + 10 * 3600)
            .is_empty());
        assert_eq!(
            annotate(None, &flags).as_deref(),
            Some("risk: new_source, outside_hours")
        );
        assert_eq!(
            annotate(
                Some("token x was revoked".into()),
                &[RiskFlag::RevokedTokenReuse]
            )
            .as_deref(),
            Some("token x was revoked [risk: revoked_token_reuse]")
        );
        assert_eq!(annotate(Some("why".into()), &[]).as_deref(), Some("why"));
        let once = annotate(Some("revoked".into()), &[RiskFlag::RevokedTokenReuse]);
        assert_eq!(
            annotate(once, &[RiskFlag::FailureBurst, RiskFlag::RevokedTokenReuse]).as_deref(),
            Some("revoked [risk: failure_burst, revoked_token_reuse]")
        );
        assert_eq!(
            annotate(
                annotate(None, &[RiskFlag::NewSource]),
                &[RiskFlag::OutsideHours]
            )
            .as_deref(),
            Some("risk: new_source, outside_hours")
        );
    }
}
