//! Terminal recordings in asciicast v2 (`{"version":2,...}` header line, then
//! `[seconds, "o"|"i"|"r", data]` event lines), where they live, and their replay with the
//! recorded timing.
//!
//! One cast per interactive shell channel, at
//! `<audit>/recordings/date=YYYY-MM-DD/<session_id>-<channel>.cast` ([`recording_path`]); the
//! session end row stores the first one's path relative to the audit directory
//! ([`recording_rel_path`]), and [`session_recordings`] finds all of a session's casts.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::error::RecorderError;

/// Longest pause replay keeps: idle minutes are not worth waiting through.
const MAX_REPLAY_PAUSE: Duration = Duration::from_secs(2);

/// Directory under the audit directory that holds terminal recordings.
pub const RECORDINGS_DIR: &str = "recordings";

/// Path of the recording of one shell channel, relative to the audit directory:
/// `recordings/date=YYYY-MM-DD/<session_id>-<channel>.cast`. This is what the trail stores in
/// the `recording` column of the session end row.
///
/// Characters of `session_id` other than ASCII letters, digits, `-`, `_` and `.` are replaced by
/// `_`, so an odd session id can never leave the recordings directory.
pub fn recording_rel_path(session_id: &str, channel: u32, date: chrono::NaiveDate) -> PathBuf {
    let safe = safe_session_id(session_id);
    PathBuf::from(RECORDINGS_DIR)
        .join(format!("date={}", date.format("%Y-%m-%d")))
        .join(format!("{safe}-{channel}.cast"))
}

/// The file-name stem of a session's casts: `session_id` with the characters
/// [`recording_rel_path`] replaces.
fn safe_session_id(session_id: &str) -> String {
    let safe: String = session_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() || safe.chars().all(|c| c == '.') {
        format!("_{safe}")
    } else {
        safe
    }
}

/// Absolute path of the recording of one shell channel:
/// `<audit_dir>/recordings/date=YYYY-MM-DD/<session_id>-<channel>.cast` (see
/// [`recording_rel_path`]). [`CastWriter::new`] creates the missing directories.
pub fn recording_path(
    audit_dir: &Path,
    session_id: &str,
    channel: u32,
    date: chrono::NaiveDate,
) -> PathBuf {
    audit_dir.join(recording_rel_path(session_id, channel, date))
}

/// Where one cast sits in a session's play order: its day, then its channel number.
fn play_key(audit_dir: &Path, path: &Path, stem: &str) -> Option<(String, u32)> {
    let rel = path.strip_prefix(audit_dir).ok()?;
    let mut parts = rel.components().map(|c| c.as_os_str().to_str());
    if parts.next()?? != RECORDINGS_DIR {
        return None;
    }
    let day = parts.next()??.strip_prefix("date=")?;
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    let channel = parts
        .next()??
        .strip_prefix(stem)?
        .strip_prefix('-')?
        .strip_suffix(".cast")?
        .parse::<u32>()
        .ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some((day.to_string(), channel))
}

/// Every recording of a session, in play order (day, then channel number): `recorded` (the
/// `recording` column of its sessions row, relative to `audit_dir`) plus every
/// `recordings/date=*/<session_id>-<channel>.cast` found on disk. A `recorded` path that does
/// not name a cast of this session under `recordings/` (an edited trail pointing elsewhere) is
/// ignored with a warning; a missing one too.
pub fn session_recordings(
    audit_dir: &Path,
    session_id: &str,
    recorded: Option<&str>,
) -> Result<Vec<PathBuf>, RecorderError> {
    let stem = safe_session_id(session_id);
    let mut found: std::collections::BTreeMap<(String, u32), PathBuf> = Default::default();
    if let Some(rel) = recorded {
        let path = audit_dir.join(rel);
        let confined = Path::new(rel).is_relative()
            && Path::new(rel)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        match play_key(audit_dir, &path, &stem) {
            Some(key)
                if confined
                    && std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file()) =>
            {
                found.insert(key, path);
            }
            Some(_) if confined => {
                tracing::warn!(recording = rel, "the session's recording is missing");
            }
            _ => {
                tracing::warn!(recording = rel, "ignoring a recording path that is not a cast of this session under recordings/");
            }
        }
    }
    let root = audit_dir.join(RECORDINGS_DIR);
    let days = match std::fs::read_dir(&root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(found.into_values().collect())
        }
        Err(e) => return Err(RecorderError::io(&root)(e)),
    };
    for day in days {
        let day = day.map_err(RecorderError::io(&root))?;
        if !day.file_type().map_err(RecorderError::io(&root))?.is_dir() {
            continue;
        }
        let dir = day.path();
        for file in std::fs::read_dir(&dir).map_err(RecorderError::io(&dir))? {
            let file = file.map_err(RecorderError::io(&dir))?;
            let path = file.path();
            if !file.file_type().map_err(RecorderError::io(&dir))?.is_file() {
                continue;
            }
            if let Some(key) = play_key(audit_dir, &path, &stem) {
                found.insert(key, path);
            }
        }
    }
    Ok(found.into_values().collect())
}

/// Writes an asciicast v2 file for one interactive session.
pub struct CastWriter {
    path: PathBuf,
    out: BufWriter<File>,
    started: Instant,
    /// Bytes of an incomplete UTF-8 sequence carried to the next chunk, per stream.
    carry_out: Vec<u8>,
    carry_in: Vec<u8>,
}

impl std::fmt::Debug for CastWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CastWriter")
            .field("path", &self.path)
            .finish()
    }
}

/// Splits `bytes` (after `carry`) into valid text and an incomplete UTF-8 tail kept in `carry`.
fn take_text(carry: &mut Vec<u8>, bytes: &[u8]) -> String {
    carry.extend_from_slice(bytes);
    let valid_up_to = match std::str::from_utf8(carry) {
        Ok(_) => carry.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        // Invalid (not just incomplete) bytes: emit everything lossily.
        Err(_) => carry.len(),
    };
    let rest = carry.split_off(valid_up_to);
    let text = String::from_utf8_lossy(carry).into_owned();
    *carry = rest;
    text
}

impl CastWriter {
    /// Creates `path` and writes the header; `env` lists variables such as `TERM` and `SHELL`.
    pub fn new(
        path: &Path,
        width: u16,
        height: u16,
        env: &[(String, String)],
    ) -> Result<CastWriter, RecorderError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(RecorderError::io(parent))?;
        }
        let file = File::create(path).map_err(RecorderError::io(path))?;
        let mut out = BufWriter::new(file);
        let env: serde_json::Map<String, Value> = env
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let header = json!({
            "version": 2,
            "width": width,
            "height": height,
            "timestamp": chrono::Utc::now().timestamp(),
            "env": env,
        });
        writeln!(out, "{header}").map_err(RecorderError::io(path))?;
        Ok(CastWriter {
            path: path.to_path_buf(),
            out,
            started: Instant::now(),
            carry_out: Vec::new(),
            carry_in: Vec::new(),
        })
    }

    fn event(&mut self, code: &str, data: &str) -> Result<(), RecorderError> {
        let t = self.started.elapsed().as_secs_f64();
        let line = json!([(t * 1e6).round() / 1e6, code, data]);
        writeln!(self.out, "{line}").map_err(RecorderError::io(&self.path))
    }

    /// Records bytes the target sent to the terminal.
    pub fn output(&mut self, bytes: &[u8]) -> Result<(), RecorderError> {
        let text = take_text(&mut self.carry_out, bytes);
        if text.is_empty() {
            return Ok(());
        }
        self.event("o", &text)
    }

    /// Records bytes the user typed (callers skip this while echo is off, so secrets stay out).
    pub fn input(&mut self, bytes: &[u8]) -> Result<(), RecorderError> {
        let text = take_text(&mut self.carry_in, bytes);
        if text.is_empty() {
            return Ok(());
        }
        self.event("i", &text)
    }

    /// Records a terminal resize.
    pub fn resize(&mut self, width: u16, height: u16) -> Result<(), RecorderError> {
        self.event("r", &format!("{width}x{height}"))
    }

    /// Flushes and closes the file.
    pub fn finish(mut self) -> Result<(), RecorderError> {
        let out = std::mem::take(&mut self.carry_out);
        if !out.is_empty() {
            self.event("o", &String::from_utf8_lossy(&out))?;
        }
        self.out.flush().map_err(RecorderError::io(&self.path))?;
        self.out
            .get_ref()
            .sync_all()
            .map_err(RecorderError::io(&self.path))
    }
}

/// Plays the output events of a cast to `out`, sleeping between them (pauses divided by
/// `speed`, each capped at two seconds). A `speed` of zero or less plays without pauses.
pub fn replay(path: &Path, speed: f64, mut out: impl Write) -> Result<(), RecorderError> {
    let file = File::open(path).map_err(RecorderError::io(path))?;
    let cast_err = |line: usize, reason: String| RecorderError::Cast {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut last = 0.0f64;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(RecorderError::io(path))?;
        let n = i + 1;
        if n == 1 {
            let header: Value =
                serde_json::from_str(&line).map_err(|e| cast_err(n, e.to_string()))?;
            if header.get("version").and_then(Value::as_u64) != Some(2) {
                return Err(cast_err(n, "not an asciicast v2 header".into()));
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let ev: (f64, String, String) =
            serde_json::from_str(&line).map_err(|e| cast_err(n, e.to_string()))?;
        if ev.1 != "o" {
            continue;
        }
        if speed > 0.0 && ev.0 > last {
            let pause = Duration::from_secs_f64((ev.0 - last) / speed).min(MAX_REPLAY_PAUSE);
            std::thread::sleep(pause);
        }
        last = last.max(ev.0);
        out.write_all(ev.2.as_bytes())
            .map_err(RecorderError::io(path))?;
        out.flush().map_err(RecorderError::io(path))?;
    }
    Ok(())
}
