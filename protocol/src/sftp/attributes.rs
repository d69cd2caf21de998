//! The ATTRS structure: a flags word saying which of size, owner, permissions, times and
//! extended pairs follow.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::SftpError;
use super::spec_numbers::attr_flag;
use super::wire::{put_string, WireReader};

const KNOWN_FLAGS: u32 = attr_flag::SIZE
    | attr_flag::UIDGID
    | attr_flag::PERMISSIONS
    | attr_flag::ACMODTIME
    | attr_flag::EXTENDED;

/// File attributes; absent fields were not sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileAttributes {
    /// Size in bytes.
    pub size: Option<u64>,
    /// `(uid, gid)`.
    pub uid_gid: Option<(u32, u32)>,
    /// POSIX permission and file-type bits.
    pub permissions: Option<u32>,
    /// `(atime, mtime)` in seconds since the epoch.
    pub times: Option<(u32, u32)>,
    /// Extended `(type, data)` pairs.
    pub extended: Vec<(Bytes, Bytes)>,
}

impl FileAttributes {
    pub(crate) fn read(r: &mut WireReader) -> Result<Self, SftpError> {
        let flags = r.u32("attribute flags")?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(SftpError::UnknownAttributeFlags {
                packet: r.packet(),
                flags,
            });
        }
        let mut attrs = Self::default();
        if flags & attr_flag::SIZE != 0 {
            attrs.size = Some(r.u64("size")?);
        }
        if flags & attr_flag::UIDGID != 0 {
            attrs.uid_gid = Some((r.u32("uid")?, r.u32("gid")?));
        }
        if flags & attr_flag::PERMISSIONS != 0 {
            attrs.permissions = Some(r.u32("permissions")?);
        }
        if flags & attr_flag::ACMODTIME != 0 {
            attrs.times = Some((r.u32("atime")?, r.u32("mtime")?));
        }
        if flags & attr_flag::EXTENDED != 0 {
            let count = r.u32("extended count")?;
            for _ in 0..count {
                attrs
                    .extended
                    .push((r.string("extended type")?, r.string("extended data")?));
            }
        }
        Ok(attrs)
    }

    pub(crate) fn write(&self, b: &mut BytesMut) {
        let mut flags = 0;
        for (present, bit) in [
            (self.size.is_some(), attr_flag::SIZE),
            (self.uid_gid.is_some(), attr_flag::UIDGID),
            (self.permissions.is_some(), attr_flag::PERMISSIONS),
            (self.times.is_some(), attr_flag::ACMODTIME),
            (!self.extended.is_empty(), attr_flag::EXTENDED),
        ] {
            if present {
                flags |= bit;
            }
        }
        b.put_u32(flags);
        if let Some(size) = self.size {
            b.put_u64(size);
        }
        if let Some((uid, gid)) = self.uid_gid {
            b.put_u32(uid);
            b.put_u32(gid);
        }
        if let Some(p) = self.permissions {
            b.put_u32(p);
        }
        if let Some((atime, mtime)) = self.times {
            b.put_u32(atime);
            b.put_u32(mtime);
        }
        if !self.extended.is_empty() {
            b.put_u32(u32::try_from(self.extended.len()).unwrap_or(u32::MAX));
            for (kind, data) in &self.extended {
                put_string(b, kind);
                put_string(b, data);
            }
        }
    }
}
