//! The numbers of the SFTP v3 draft in one place: packet types, status codes, open flags and
//! attribute flags.

/// Packet type bytes.
pub mod packet_type {
    /// SSH_FXP_INIT.
    pub const INIT: u8 = 1;
    /// SSH_FXP_VERSION.
    pub const VERSION: u8 = 2;
    /// SSH_FXP_OPEN.
    pub const OPEN: u8 = 3;
    /// SSH_FXP_CLOSE.
    pub const CLOSE: u8 = 4;
    /// SSH_FXP_READ.
    pub const READ: u8 = 5;
    /// SSH_FXP_WRITE.
    pub const WRITE: u8 = 6;
    /// SSH_FXP_LSTAT.
    pub const LSTAT: u8 = 7;
    /// SSH_FXP_FSTAT.
    pub const FSTAT: u8 = 8;
    /// SSH_FXP_SETSTAT.
    pub const SETSTAT: u8 = 9;
    /// SSH_FXP_FSETSTAT.
    pub const FSETSTAT: u8 = 10;
    /// SSH_FXP_OPENDIR.
    pub const OPENDIR: u8 = 11;
    /// SSH_FXP_READDIR.
    pub const READDIR: u8 = 12;
    /// SSH_FXP_REMOVE.
    pub const REMOVE: u8 = 13;
    /// SSH_FXP_MKDIR.
    pub const MKDIR: u8 = 14;
    /// SSH_FXP_RMDIR.
    pub const RMDIR: u8 = 15;
    /// SSH_FXP_REALPATH.
    pub const REALPATH: u8 = 16;
    /// SSH_FXP_STAT.
    pub const STAT: u8 = 17;
    /// SSH_FXP_RENAME.
    pub const RENAME: u8 = 18;
    /// SSH_FXP_READLINK.
    pub const READLINK: u8 = 19;
    /// SSH_FXP_SYMLINK.
    pub const SYMLINK: u8 = 20;
    /// SSH_FXP_STATUS.
    pub const STATUS: u8 = 101;
    /// SSH_FXP_HANDLE.
    pub const HANDLE: u8 = 102;
    /// SSH_FXP_DATA.
    pub const DATA: u8 = 103;
    /// SSH_FXP_NAME.
    pub const NAME: u8 = 104;
    /// SSH_FXP_ATTRS.
    pub const ATTRS: u8 = 105;
    /// SSH_FXP_EXTENDED.
    pub const EXTENDED: u8 = 200;
    /// SSH_FXP_EXTENDED_REPLY.
    pub const EXTENDED_REPLY: u8 = 201;
}

/// Status codes of SSH_FXP_STATUS.
pub mod status_code {
    /// SSH_FX_OK.
    pub const OK: u32 = 0;
    /// SSH_FX_EOF.
    pub const EOF: u32 = 1;
    /// SSH_FX_NO_SUCH_FILE.
    pub const NO_SUCH_FILE: u32 = 2;
    /// SSH_FX_PERMISSION_DENIED.
    pub const PERMISSION_DENIED: u32 = 3;
    /// SSH_FX_FAILURE.
    pub const FAILURE: u32 = 4;
    /// SSH_FX_BAD_MESSAGE.
    pub const BAD_MESSAGE: u32 = 5;
    /// SSH_FX_NO_CONNECTION.
    pub const NO_CONNECTION: u32 = 6;
    /// SSH_FX_CONNECTION_LOST.
    pub const CONNECTION_LOST: u32 = 7;
    /// SSH_FX_OP_UNSUPPORTED.
    pub const OP_UNSUPPORTED: u32 = 8;
}

/// `pflags` bits of SSH_FXP_OPEN.
pub mod open_flag {
    /// SSH_FXF_READ.
    pub const READ: u32 = 0x01;
    /// SSH_FXF_WRITE.
    pub const WRITE: u32 = 0x02;
    /// SSH_FXF_APPEND.
    pub const APPEND: u32 = 0x04;
    /// SSH_FXF_CREAT.
    pub const CREAT: u32 = 0x08;
    /// SSH_FXF_TRUNC.
    pub const TRUNC: u32 = 0x10;
    /// SSH_FXF_EXCL.
    pub const EXCL: u32 = 0x20;
}

/// Flag bits of the ATTRS structure.
pub mod attr_flag {
    /// SSH_FILEXFER_ATTR_SIZE.
    pub const SIZE: u32 = 0x0000_0001;
    /// SSH_FILEXFER_ATTR_UIDGID.
    pub const UIDGID: u32 = 0x0000_0002;
    /// SSH_FILEXFER_ATTR_PERMISSIONS.
    pub const PERMISSIONS: u32 = 0x0000_0004;
    /// SSH_FILEXFER_ATTR_ACMODTIME.
    pub const ACMODTIME: u32 = 0x0000_0008;
    /// SSH_FILEXFER_ATTR_EXTENDED.
    pub const EXTENDED: u32 = 0x8000_0000;
}
