//! The one table of PostgreSQL message type bytes (protocol 3.0/3.2), by direction.
//! Some bytes mean different messages in each direction (`D`, `C`, `E`, ...), so a frame's type is
//! only meaningful together with who sent it.

/// Type bytes of messages sent by the client.
pub mod frontend {
    /// Bind.
    pub const BIND: u8 = b'B';
    /// Close (statement or portal).
    pub const CLOSE: u8 = b'C';
    /// CopyData.
    pub const COPY_DATA: u8 = b'd';
    /// CopyDone.
    pub const COPY_DONE: u8 = b'c';
    /// CopyFail.
    pub const COPY_FAIL: u8 = b'f';
    /// Describe (statement or portal).
    pub const DESCRIBE: u8 = b'D';
    /// Execute.
    pub const EXECUTE: u8 = b'E';
    /// Flush.
    pub const FLUSH: u8 = b'H';
    /// FunctionCall (fast path).
    pub const FUNCTION_CALL: u8 = b'F';
    /// Parse.
    pub const PARSE: u8 = b'P';
    /// PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse share this byte.
    pub const AUTHENTICATION_RESPONSE: u8 = b'p';
    /// Query (simple protocol).
    pub const QUERY: u8 = b'Q';
    /// Sync.
    pub const SYNC: u8 = b'S';
    /// Terminate.
    pub const TERMINATE: u8 = b'X';
}

/// Type bytes of messages sent by the server.
pub mod backend {
    /// Authentication request of any kind (Ok, SASL, ...).
    pub const AUTHENTICATION: u8 = b'R';
    /// BackendKeyData.
    pub const BACKEND_KEY_DATA: u8 = b'K';
    /// BindComplete.
    pub const BIND_COMPLETE: u8 = b'2';
    /// CloseComplete.
    pub const CLOSE_COMPLETE: u8 = b'3';
    /// CommandComplete.
    pub const COMMAND_COMPLETE: u8 = b'C';
    /// CopyData.
    pub const COPY_DATA: u8 = b'd';
    /// CopyDone.
    pub const COPY_DONE: u8 = b'c';
    /// CopyInResponse.
    pub const COPY_IN_RESPONSE: u8 = b'G';
    /// CopyOutResponse.
    pub const COPY_OUT_RESPONSE: u8 = b'H';
    /// CopyBothResponse.
    pub const COPY_BOTH_RESPONSE: u8 = b'W';
    /// DataRow.
    pub const DATA_ROW: u8 = b'D';
    /// EmptyQueryResponse.
    pub const EMPTY_QUERY_RESPONSE: u8 = b'I';
    /// ErrorResponse.
    pub const ERROR_RESPONSE: u8 = b'E';
    /// FunctionCallResponse.
    pub const FUNCTION_CALL_RESPONSE: u8 = b'V';
    /// NegotiateProtocolVersion.
    pub const NEGOTIATE_PROTOCOL_VERSION: u8 = b'v';
    /// NoData.
    pub const NO_DATA: u8 = b'n';
    /// NoticeResponse.
    pub const NOTICE_RESPONSE: u8 = b'N';
    /// NotificationResponse.
    pub const NOTIFICATION_RESPONSE: u8 = b'A';
    /// ParameterDescription.
    pub const PARAMETER_DESCRIPTION: u8 = b't';
    /// ParameterStatus.
    pub const PARAMETER_STATUS: u8 = b'S';
    /// ParseComplete.
    pub const PARSE_COMPLETE: u8 = b'1';
    /// PortalSuspended.
    pub const PORTAL_SUSPENDED: u8 = b's';
    /// ReadyForQuery.
    pub const READY_FOR_QUERY: u8 = b'Z';
    /// RowDescription.
    pub const ROW_DESCRIPTION: u8 = b'T';
}

/// Request codes of untagged startup-phase packets (the 4 bytes after the length).
pub mod startup {
    /// Protocol version 3.0 (`major << 16 | minor`).
    pub const PROTOCOL_3_0: u32 = 3 << 16;
    /// Protocol version 3.2 (PostgreSQL 18: longer cancel keys).
    pub const PROTOCOL_3_2: u32 = (3 << 16) | 2;
    /// CancelRequest.
    pub const CANCEL_REQUEST: u32 = 80_877_102;
    /// SSLRequest.
    pub const SSL_REQUEST: u32 = 80_877_103;
    /// GSSENCRequest.
    pub const GSSENC_REQUEST: u32 = 80_877_104;
    /// The byte a server answers to SSLRequest / GSSENCRequest to accept.
    pub const ENCRYPTION_ACCEPTED: u8 = b'S';
    /// The byte a server answers to SSLRequest / GSSENCRequest to refuse.
    pub const ENCRYPTION_REFUSED: u8 = b'N';
}
