//! ParameterStatus (B): the server reports a run-time parameter (at startup and after `SET`).

use bytes::BytesMut;

use crate::postgres::message_writer::{put_cstr, write_message};
use crate::postgres::tags::backend::PARAMETER_STATUS;
use crate::postgres::{Frame, ProtocolError};

/// A parameter name and its current value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterStatus {
    /// Parameter name, e.g. `server_version`.
    pub name: String,
    /// Its value.
    pub value: String,
}

impl ParameterStatus {
    /// Decodes an `S` frame from the server.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        let mut r = frame.reader("ParameterStatus", PARAMETER_STATUS)?;
        let name = r.cstr("name")?;
        let value = r.cstr("value")?;
        r.finish()?;
        Ok(Self { name, value })
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        write_message(buf, PARAMETER_STATUS, |b| {
            put_cstr(b, &self.name);
            put_cstr(b, &self.value);
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let msg = ParameterStatus {
            name: "TimeZone".into(),
            value: "UTC".into(),
        };
        let mut buf = BytesMut::new();
        msg.encode(&mut buf);
        let frame = Frame::from_encoded(buf.freeze(), 100).unwrap();
        assert_eq!(ParameterStatus::decode(&frame).unwrap(), msg);
    }
}
