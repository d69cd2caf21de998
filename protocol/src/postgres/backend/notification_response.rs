//! NotificationResponse (B): a NOTIFY delivered to a listening session.

use bytes::{BufMut, BytesMut};

use crate::postgres::message_writer::{put_cstr, write_message};
use crate::postgres::tags::backend::NOTIFICATION_RESPONSE;
use crate::postgres::{Frame, ProtocolError};

/// An asynchronous notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationResponse {
    /// Process id of the notifying backend.
    pub pid: i32,
    /// Channel name.
    pub channel: String,
    /// Payload string.
    pub payload: String,
}

impl NotificationResponse {
    /// Decodes an `A` frame.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        let mut r = frame.reader("NotificationResponse", NOTIFICATION_RESPONSE)?;
        let pid = r.i32("process id")?;
        let channel = r.cstr("channel")?;
        let payload = r.cstr("payload")?;
        r.finish()?;
        Ok(Self {
            pid,
            channel,
            payload,
        })
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        write_message(buf, NOTIFICATION_RESPONSE, |b| {
            b.put_i32(self.pid);
            put_cstr(b, &self.channel);
            put_cstr(b, &self.payload);
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let msg = NotificationResponse {
            pid: 9,
            channel: "jobs".into(),
            payload: "42".into(),
        };
        let mut buf = BytesMut::new();
        msg.encode(&mut buf);
        let frame = Frame::from_encoded(buf.freeze(), 100).unwrap();
        assert_eq!(NotificationResponse::decode(&frame).unwrap(), msg);
    }
}
