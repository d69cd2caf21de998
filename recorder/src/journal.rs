//! The write-ahead journal: append-only segment files `journal/<id>.seg`. A segment starts with
//! the 8-byte magic `BSJRNL01`; each record is `len: u32 LE ‖ crc32: u32 LE ‖ type: u8 ‖ payload`,
//! where `len` counts type and payload and the CRC-32 covers them. A crash mid-write leaves a
//! torn tail that fails its length or checksum; readers stop there and recovery cuts it off.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::canonical::Encoder;
use crate::chain::ChainRow;
use crate::error::RecorderError;
use crate::record::Record;

/// Bytes every segment starts with.
const MAGIC: &[u8; 8] = b"BSJRNL01";
/// Refuse records larger than this when reading: a corrupt length must not allocate gigabytes.
const MAX_RECORD: usize = 64 << 20;
const HEADER: usize = 8;

/// Path of segment `id` in `journal_dir`.
pub(crate) fn segment_path(journal_dir: &Path, id: u64) -> PathBuf {
    journal_dir.join(format!("{id:010}.seg"))
}

/// Segment ids present in `journal_dir`, oldest first.
pub(crate) fn list_segments(journal_dir: &Path) -> Result<Vec<(u64, PathBuf)>, RecorderError> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(journal_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(RecorderError::io(journal_dir)(e)),
    };
    for ent in rd {
        let ent = ent.map_err(RecorderError::io(journal_dir))?;
        let name = ent.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".seg")) else {
            continue;
        };
        if let Ok(id) = stem.parse::<u64>() {
            out.push((id, ent.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Appends framed records to `out`.
pub(crate) fn frame(record: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER]);
    record.encode(out);
    let body = &out[start + HEADER..];
    let len = body.len() as u32;
    let crc = crc32fast::hash(body);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Appends the frame of a chained row (an action or outcome record following `prev` in its
/// session's chain) and returns the row's chain hash, computed over the very bytes framed:
/// the row is encoded once, for the journal and the chain alike.
pub(crate) fn frame_chained<T: ChainRow>(row: &T, prev: &[u8; 32], out: &mut Vec<u8>) -> [u8; 32] {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER]);
    out.push(T::RECORD_TYPE);
    let row_start = out.len();
    row.encode(&mut Encoder(out));
    out.extend_from_slice(prev);
    // SHA-256(tag ‖ canonical row ‖ prev), as `chain::row_hash`.
    let mut sha = Sha256::new();
    sha.update([T::TAG]);
    sha.update(&out[row_start..]);
    let hash: [u8; 32] = sha.finalize().into();
    out.extend_from_slice(&hash);
    let body = &out[start + HEADER..];
    let len = body.len() as u32;
    let crc = crc32fast::hash(body);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    hash
}

/// The segment currently being appended to.
pub(crate) struct ActiveSegment {
    pub(crate) id: u64,
    pub(crate) path: PathBuf,
    file: File,
    /// Length of the file up to the last fully written batch.
    len: u64,
}

impl ActiveSegment {
    /// Creates segment `id` (it must not exist) and fsyncs the journal directory.
    pub(crate) fn create(journal_dir: &Path, id: u64) -> Result<ActiveSegment, RecorderError> {
        let path = segment_path(journal_dir, id);
        let mut file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .map_err(RecorderError::io(&path))?;
        file.write_all(MAGIC).map_err(RecorderError::io(&path))?;
        sync_dir(journal_dir)?;
        Ok(ActiveSegment {
            id,
            path,
            file,
            len: MAGIC.len() as u64,
        })
    }

    /// Writes `bytes` with one `write(2)` loop and, when `sync`, one `fdatasync(2)`. On failure
    /// the file is cut back to its last good length so later batches stay readable.
    pub(crate) fn append(&mut self, bytes: &[u8], sync: bool) -> Result<(), RecorderError> {
        let result =
            self.file
                .write_all(bytes)
                .and_then(|()| if sync { self.file.sync_data() } else { Ok(()) });
        match result {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                if let Err(cut) = self.file.set_len(self.len) {
                    tracing::error!(segment = %self.path.display(), error = %cut, "cannot cut failed journal write");
                }
                Err(RecorderError::io(&self.path)(e))
            }
        }
    }

    /// Flushes the segment to disk before it is handed to the roller.
    pub(crate) fn seal(self) -> Result<PathBuf, RecorderError> {
        self.file
            .sync_all()
            .map_err(RecorderError::io(&self.path))?;
        Ok(self.path)
    }
}

/// What reading a segment found.
pub(crate) struct SegmentContents {
    /// Records up to the first torn or corrupt one.
    pub(crate) records: Vec<Record>,
    /// Length of the valid prefix.
    pub(crate) valid_len: u64,
    /// Length of the file.
    pub(crate) file_len: u64,
}

/// Reads every intact record of a segment; stops at the first torn or corrupt record.
pub(crate) fn read_segment(path: &Path) -> Result<SegmentContents, RecorderError> {
    let data = fs::read(path).map_err(RecorderError::io(path))?;
    let file_len = data.len() as u64;
    let mut records = Vec::new();
    if data.len() < MAGIC.len() || &data[..MAGIC.len()] != MAGIC {
        return Ok(SegmentContents {
            records,
            valid_len: 0,
            file_len,
        });
    }
    let mut pos = MAGIC.len();
    while let Some(header) = data.get(pos..pos + HEADER) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len == 0 || len > MAX_RECORD {
            break;
        }
        let Some(body) = data.get(pos + HEADER..pos + HEADER + len) else {
            break;
        };
        if crc32fast::hash(body) != crc {
            break;
        }
        match Record::decode(body) {
            Ok(r) => records.push(r),
            Err(e) => {
                tracing::warn!(segment = %path.display(), offset = pos, reason = e.0, "undecodable journal record");
                break;
            }
        }
        pos += HEADER + len;
    }
    Ok(SegmentContents {
        records,
        valid_len: pos as u64,
        file_len,
    })
}

/// fsyncs a directory so a create, rename or unlink in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), RecorderError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(RecorderError::io(dir))
}
