//! CopyInResponse, CopyOutResponse and CopyBothResponse (B): the server switches to COPY mode.
//! The three share one body (overall format and per-column formats), defined here once.

use bytes::{BufMut, BytesMut};

use crate::postgres::message_writer::{put_count_i16, write_message};
use crate::postgres::tags::backend::{COPY_BOTH_RESPONSE, COPY_IN_RESPONSE, COPY_OUT_RESPONSE};
use crate::postgres::{Frame, ProtocolError};

/// The body of a Copy*Response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFormat {
    /// Overall format: 0 text, 1 binary.
    pub format: i8,
    /// Per-column format codes.
    pub column_formats: Vec<i16>,
}

impl CopyFormat {
    fn decode(frame: &Frame, message: &'static str, tag: u8) -> Result<Self, ProtocolError> {
        let mut r = frame.reader(message, tag)?;
        let format = r.u8("overall format")?;
        let format = match format {
            0 | 1 => i8::try_from(format).unwrap_or_default(),
            other => return Err(r.invalid("overall format", format!("{other}, expected 0 or 1"))),
        };
        let n = r.count_i16("column count")?;
        let column_formats = (0..n)
            .map(|_| r.i16("column format"))
            .collect::<Result<Vec<_>, _>>()?;
        r.finish()?;
        Ok(Self {
            format,
            column_formats,
        })
    }

    fn encode(&self, buf: &mut BytesMut, tag: u8) {
        write_message(buf, tag, |b| {
            b.put_i8(self.format);
            put_count_i16(b, self.column_formats.len());
            for f in &self.column_formats {
                b.put_i16(*f);
            }
        });
    }
}

macro_rules! copy_response {
    ($(#[$doc:meta])* $name:ident, $tag:expr, $label:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(pub CopyFormat);

        impl $name {
            /// Decodes the frame.
            pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
                CopyFormat::decode(frame, $label, $tag).map($name)
            }

            /// Appends the encoded message to `buf`.
            pub fn encode(&self, buf: &mut BytesMut) {
                self.0.encode(buf, $tag);
            }
        }
    };
}

copy_response!(
    /// CopyInResponse: the server waits for CopyData from the client (`COPY ... FROM STDIN`).
    CopyInResponse,
    COPY_IN_RESPONSE,
    "CopyInResponse"
);
copy_response!(
    /// CopyOutResponse: CopyData follows from the server (`COPY ... TO STDOUT`).
    CopyOutResponse,
    COPY_OUT_RESPONSE,
    "CopyOutResponse"
);
copy_response!(
    /// CopyBothResponse: both directions stream (replication only).
    CopyBothResponse,
    COPY_BOTH_RESPONSE,
    "CopyBothResponse"
);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn format() -> CopyFormat {
        CopyFormat {
            format: 0,
            column_formats: vec![0, 0],
        }
    }

    #[test]
    fn round_trip_each_direction() {
        let mut buf = BytesMut::new();
        CopyInResponse(format()).encode(&mut buf);
        let frame = Frame::from_encoded(buf.split().freeze(), 100).unwrap();
        assert_eq!(
            CopyInResponse::decode(&frame).unwrap(),
            CopyInResponse(format())
        );
        assert!(
            CopyOutResponse::decode(&frame).is_err(),
            "type byte is checked"
        );

        CopyOutResponse(format()).encode(&mut buf);
        let frame = Frame::from_encoded(buf.split().freeze(), 100).unwrap();
        assert_eq!(
            CopyOutResponse::decode(&frame).unwrap(),
            CopyOutResponse(format())
        );

        CopyBothResponse(format()).encode(&mut buf);
        let frame = Frame::from_encoded(buf.split().freeze(), 100).unwrap();
        assert_eq!(
            CopyBothResponse::decode(&frame).unwrap(),
            CopyBothResponse(format())
        );
    }

    #[test]
    fn bad_format_is_an_error() {
        let frame = Frame::from_encoded(b"G\0\0\0\x07\x05\0\0"[..].into(), 100).unwrap();
        assert!(CopyInResponse::decode(&frame).is_err());
    }
}
