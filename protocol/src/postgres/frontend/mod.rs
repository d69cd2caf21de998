//! Messages the client sends after startup, one file each, and `FrontendMessage`, which
//! dispatches a frame on its type byte. The `p` byte is shared by PasswordMessage,
//! SASLInitialResponse and SASLResponse; only the authentication state tells them apart, so the
//! dispatcher returns it as `AuthenticationResponse` for the caller to decode.

mod bind;
mod close;
mod copy_data;
mod copy_done;
mod copy_fail;
mod describe;
mod execute;
mod flush;
mod function_call;
mod parse;
mod password_message;
mod query;
mod sasl_initial_response;
mod sasl_response;
mod sync;
mod terminate;

pub use bind::Bind;
pub use close::Close;
pub use copy_data::CopyData;
pub use copy_done::CopyDone;
pub use copy_fail::CopyFail;
pub use describe::{Describe, ObjectKind};
pub use execute::Execute;
pub use flush::Flush;
pub use function_call::FunctionCall;
pub use parse::Parse;
pub use password_message::PasswordMessage;
pub use query::Query;
pub use sasl_initial_response::SaslInitialResponse;
pub use sasl_response::SaslResponse;
pub use sync::Sync;
pub use terminate::Terminate;

use super::tags::frontend as tag;
use super::{Frame, ProtocolError};

/// A decoded frontend message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontendMessage {
    /// Simple query.
    Query(Query),
    /// Extended protocol: Parse.
    Parse(Parse),
    /// Extended protocol: Bind.
    Bind(Bind),
    /// Extended protocol: Execute.
    Execute(Execute),
    /// Extended protocol: Describe.
    Describe(Describe),
    /// Extended protocol: Close.
    Close(Close),
    /// Extended protocol: Sync.
    Sync(Sync),
    /// Flush.
    Flush(Flush),
    /// COPY FROM STDIN data.
    CopyData(CopyData),
    /// COPY FROM STDIN end.
    CopyDone(CopyDone),
    /// COPY FROM STDIN abort.
    CopyFail(CopyFail),
    /// Fast-path function call.
    FunctionCall(FunctionCall),
    /// Session end.
    Terminate(Terminate),
    /// A `p` message: decode it with `PasswordMessage`, `SaslInitialResponse` or `SaslResponse`
    /// depending on the authentication request outstanding.
    AuthenticationResponse(Frame),
}

impl FrontendMessage {
    /// Decodes `frame` as a client message; an unknown type byte is `UnknownMessageType`.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        Ok(match frame.tag {
            tag::QUERY => Self::Query(Query::decode(frame)?),
            tag::PARSE => Self::Parse(Parse::decode(frame)?),
            tag::BIND => Self::Bind(Bind::decode(frame)?),
            tag::EXECUTE => Self::Execute(Execute::decode(frame)?),
            tag::DESCRIBE => Self::Describe(Describe::decode(frame)?),
            tag::CLOSE => Self::Close(Close::decode(frame)?),
            tag::SYNC => Self::Sync(Sync::decode(frame)?),
            tag::FLUSH => Self::Flush(Flush::decode(frame)?),
            tag::COPY_DATA => Self::CopyData(CopyData::decode(frame)?),
            tag::COPY_DONE => Self::CopyDone(CopyDone::decode(frame)?),
            tag::COPY_FAIL => Self::CopyFail(CopyFail::decode(frame)?),
            tag::FUNCTION_CALL => Self::FunctionCall(FunctionCall::decode(frame)?),
            tag::TERMINATE => Self::Terminate(Terminate::decode(frame)?),
            tag::AUTHENTICATION_RESPONSE => Self::AuthenticationResponse(frame.clone()),
            other => {
                return Err(ProtocolError::UnknownMessageType {
                    direction: "frontend",
                    tag: char::from(other),
                    byte: other,
                })
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    #[test]
    fn dispatches_on_the_type_byte() {
        let mut buf = BytesMut::new();
        Query::new("select 1").encode(&mut buf);
        Sync.encode(&mut buf);
        let frame = crate::postgres::decode_frame(&mut buf, 100)
            .unwrap()
            .unwrap();
        assert_eq!(
            FrontendMessage::decode(&frame).unwrap(),
            FrontendMessage::Query(Query::new("select 1"))
        );
        let frame = crate::postgres::decode_frame(&mut buf, 100)
            .unwrap()
            .unwrap();
        assert_eq!(
            FrontendMessage::decode(&frame).unwrap(),
            FrontendMessage::Sync(Sync)
        );
    }

    #[test]
    fn unknown_type_frames_but_does_not_decode() {
        let frame = Frame::from_encoded(b"Z\0\0\0\x05I"[..].into(), 100).unwrap();
        assert_eq!(
            FrontendMessage::decode(&frame).unwrap_err().to_string(),
            "unknown frontend message type 'Z' (byte 90)"
        );
    }
}
