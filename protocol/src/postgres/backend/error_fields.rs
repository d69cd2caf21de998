//! The field list shared by ErrorResponse and NoticeResponse: `code byte | string` pairs ended by
//! a zero byte, with accessors for the well-known codes and a builder for the proxy's own errors.

use bytes::{BufMut, BytesMut};

use crate::postgres::body_reader::BodyReader;
use crate::postgres::message_writer::put_cstr;
use crate::postgres::ProtocolError;

/// Field code: severity, localized (`S`).
pub const SEVERITY: u8 = b'S';
/// Field code: severity, never localized (`V`).
pub const SEVERITY_NONLOCALIZED: u8 = b'V';
/// Field code: SQLSTATE (`C`).
pub const CODE: u8 = b'C';
/// Field code: primary message (`M`).
pub const MESSAGE: u8 = b'M';
/// Field code: detail (`D`).
pub const DETAIL: u8 = b'D';
/// Field code: hint (`H`).
pub const HINT: u8 = b'H';
/// Field code: error position in the query string (`P`).
pub const POSITION: u8 = b'P';
/// Field code: schema name (`s`).
pub const SCHEMA: u8 = b's';
/// Field code: table name (`t`).
pub const TABLE: u8 = b't';
/// Field code: constraint name (`n`).
pub const CONSTRAINT: u8 = b'n';

/// Severity of an error or notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// `ERROR`: the statement failed; the session goes on.
    Error,
    /// `FATAL`: the session ends.
    Fatal,
    /// `PANIC`: every session ends.
    Panic,
    /// `WARNING` (notices).
    Warning,
    /// `NOTICE` (notices).
    Notice,
    /// `INFO` (notices).
    Info,
    /// `LOG` (notices).
    Log,
    /// `DEBUG` (notices).
    Debug,
}

impl Severity {
    /// The non-localized name sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "ERROR",
            Self::Fatal => "FATAL",
            Self::Panic => "PANIC",
            Self::Warning => "WARNING",
            Self::Notice => "NOTICE",
            Self::Info => "INFO",
            Self::Log => "LOG",
            Self::Debug => "DEBUG",
        }
    }
}

/// The fields of an ErrorResponse or NoticeResponse, in wire order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorFields {
    /// `(code, value)` pairs as sent.
    pub fields: Vec<(u8, String)>,
}

impl ErrorFields {
    /// Starts a field list with severity (both `S` and `V`), SQLSTATE and message.
    pub fn new(severity: Severity, code: &str, message: impl Into<String>) -> Self {
        Self {
            fields: vec![
                (SEVERITY, severity.as_str().to_owned()),
                (SEVERITY_NONLOCALIZED, severity.as_str().to_owned()),
                (CODE, code.to_owned()),
                (MESSAGE, message.into()),
            ],
        }
    }

    /// Adds a detail line.
    pub fn detail(self, detail: impl Into<String>) -> Self {
        self.field(DETAIL, detail)
    }

    /// Adds a hint.
    pub fn hint(self, hint: impl Into<String>) -> Self {
        self.field(HINT, hint)
    }

    /// Adds any field. A code of 0 would end the list early, so it is ignored.
    pub fn field(mut self, code: u8, value: impl Into<String>) -> Self {
        if code != 0 {
            self.fields.push((code, value.into()));
        }
        self
    }

    /// The first value of field `code`.
    pub fn get(&self, code: u8) -> Option<&str> {
        self.fields
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_str())
    }

    /// Severity: the non-localized `V` field, else `S`.
    pub fn severity(&self) -> Option<&str> {
        self.get(SEVERITY_NONLOCALIZED)
            .or_else(|| self.get(SEVERITY))
    }

    /// SQLSTATE (`C`).
    pub fn code(&self) -> Option<&str> {
        self.get(CODE)
    }

    /// Primary message (`M`).
    pub fn message(&self) -> Option<&str> {
        self.get(MESSAGE)
    }

    /// Detail (`D`).
    pub fn detail_text(&self) -> Option<&str> {
        self.get(DETAIL)
    }

    /// Hint (`H`).
    pub fn hint_text(&self) -> Option<&str> {
        self.get(HINT)
    }

    pub(crate) fn read(r: &mut BodyReader) -> Result<Self, ProtocolError> {
        let mut fields = Vec::new();
        loop {
            let code = r.u8("field code")?;
            if code == 0 {
                return Ok(Self { fields });
            }
            fields.push((code, r.cstr("field value")?));
        }
    }

    pub(crate) fn write(&self, b: &mut BytesMut) {
        for (code, value) in &self.fields {
            if *code != 0 {
                b.put_u8(*code);
                put_cstr(b, value);
            }
        }
        b.put_u8(0);
    }
}
