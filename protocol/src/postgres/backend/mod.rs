//! Messages the server sends, one file each, and `BackendMessage`, which dispatches a frame on
//! its type byte. CopyData and CopyDone are the same in both directions and come from `frontend`.

mod authentication;
mod backend_key_data;
mod bind_complete;
mod close_complete;
mod command_complete;
mod copy_response;
mod data_row;
mod empty_query_response;
mod error_fields;
mod error_response;
mod negotiate_protocol_version;
mod no_data;
mod notice_response;
mod notification_response;
mod parameter_description;
mod parameter_status;
mod parse_complete;
mod portal_suspended;
mod ready_for_query;
mod row_description;

pub use super::frontend::{CopyData, CopyDone};
pub use authentication::Authentication;
pub use backend_key_data::BackendKeyData;
pub use bind_complete::BindComplete;
pub use close_complete::CloseComplete;
pub use command_complete::CommandComplete;
pub use copy_response::{CopyBothResponse, CopyFormat, CopyInResponse, CopyOutResponse};
pub use data_row::DataRow;
pub use empty_query_response::EmptyQueryResponse;
pub use error_fields::{ErrorFields, Severity};
pub use error_response::{error_response, ErrorResponse};
pub use negotiate_protocol_version::NegotiateProtocolVersion;
pub use no_data::NoData;
pub use notice_response::NoticeResponse;
pub use notification_response::NotificationResponse;
pub use parameter_description::ParameterDescription;
pub use parameter_status::ParameterStatus;
pub use parse_complete::ParseComplete;
pub use portal_suspended::PortalSuspended;
pub use ready_for_query::{ReadyForQuery, TransactionStatus};
pub use row_description::{FieldDescription, RowDescription};

/// Field codes of ErrorResponse / NoticeResponse (`S`, `V`, `C`, `M`, `D`, `H`, ...).
pub mod error_field_codes {
    pub use super::error_fields::{
        CODE, CONSTRAINT, DETAIL, HINT, MESSAGE, POSITION, SCHEMA, SEVERITY, SEVERITY_NONLOCALIZED,
        TABLE,
    };
}

use super::tags::backend as tag;
use super::{Frame, ProtocolError};

/// A decoded backend message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendMessage {
    /// Authentication request or result.
    Authentication(Authentication),
    /// Run-time parameter report.
    ParameterStatus(ParameterStatus),
    /// Cancel credentials.
    BackendKeyData(BackendKeyData),
    /// Ready for the next query.
    ReadyForQuery(ReadyForQuery),
    /// Error.
    ErrorResponse(ErrorResponse),
    /// Notice.
    NoticeResponse(NoticeResponse),
    /// Statement finished.
    CommandComplete(CommandComplete),
    /// Result columns.
    RowDescription(RowDescription),
    /// Result row.
    DataRow(DataRow),
    /// COPY FROM STDIN starts.
    CopyInResponse(CopyInResponse),
    /// COPY TO STDOUT starts.
    CopyOutResponse(CopyOutResponse),
    /// Replication COPY starts.
    CopyBothResponse(CopyBothResponse),
    /// COPY data.
    CopyData(CopyData),
    /// COPY end.
    CopyDone(CopyDone),
    /// NOTIFY delivered.
    NotificationResponse(NotificationResponse),
    /// Parse succeeded.
    ParseComplete(ParseComplete),
    /// Bind succeeded.
    BindComplete(BindComplete),
    /// Close succeeded.
    CloseComplete(CloseComplete),
    /// No result rows.
    NoData(NoData),
    /// Row limit reached.
    PortalSuspended(PortalSuspended),
    /// Empty query string.
    EmptyQueryResponse(EmptyQueryResponse),
    /// Statement parameter types.
    ParameterDescription(ParameterDescription),
    /// Protocol downgrade offer.
    NegotiateProtocolVersion(NegotiateProtocolVersion),
}

impl BackendMessage {
    /// Decodes `frame` as a server message; an unknown type byte is `UnknownMessageType`.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        Ok(match frame.tag {
            tag::AUTHENTICATION => Self::Authentication(Authentication::decode(frame)?),
            tag::PARAMETER_STATUS => Self::ParameterStatus(ParameterStatus::decode(frame)?),
            tag::BACKEND_KEY_DATA => Self::BackendKeyData(BackendKeyData::decode(frame)?),
            tag::READY_FOR_QUERY => Self::ReadyForQuery(ReadyForQuery::decode(frame)?),
            tag::ERROR_RESPONSE => Self::ErrorResponse(ErrorResponse::decode(frame)?),
            tag::NOTICE_RESPONSE => Self::NoticeResponse(NoticeResponse::decode(frame)?),
            tag::COMMAND_COMPLETE => Self::CommandComplete(CommandComplete::decode(frame)?),
            tag::ROW_DESCRIPTION => Self::RowDescription(RowDescription::decode(frame)?),
            tag::DATA_ROW => Self::DataRow(DataRow::decode(frame)?),
            tag::COPY_IN_RESPONSE => Self::CopyInResponse(CopyInResponse::decode(frame)?),
            tag::COPY_OUT_RESPONSE => Self::CopyOutResponse(CopyOutResponse::decode(frame)?),
            tag::COPY_BOTH_RESPONSE => Self::CopyBothResponse(CopyBothResponse::decode(frame)?),
            tag::COPY_DATA => Self::CopyData(CopyData::decode(frame)?),
            tag::COPY_DONE => Self::CopyDone(CopyDone::decode(frame)?),
            tag::NOTIFICATION_RESPONSE => {
                Self::NotificationResponse(NotificationResponse::decode(frame)?)
            }
            tag::PARSE_COMPLETE => Self::ParseComplete(ParseComplete::decode(frame)?),
            tag::BIND_COMPLETE => Self::BindComplete(BindComplete::decode(frame)?),
            tag::CLOSE_COMPLETE => Self::CloseComplete(CloseComplete::decode(frame)?),
            tag::NO_DATA => Self::NoData(NoData::decode(frame)?),
            tag::PORTAL_SUSPENDED => Self::PortalSuspended(PortalSuspended::decode(frame)?),
            tag::EMPTY_QUERY_RESPONSE => {
                Self::EmptyQueryResponse(EmptyQueryResponse::decode(frame)?)
            }
            tag::PARAMETER_DESCRIPTION => {
                Self::ParameterDescription(ParameterDescription::decode(frame)?)
            }
            tag::NEGOTIATE_PROTOCOL_VERSION => {
                Self::NegotiateProtocolVersion(NegotiateProtocolVersion::decode(frame)?)
            }
            other => {
                return Err(ProtocolError::UnknownMessageType {
                    direction: "backend",
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
    fn dispatches_a_server_reply() {
        let mut buf = BytesMut::new();
        CommandComplete::new("SELECT 1").encode(&mut buf);
        ReadyForQuery {
            status: TransactionStatus::Idle,
        }
        .encode(&mut buf);
        let mut seen = Vec::new();
        while let Some(frame) = crate::postgres::decode_frame(&mut buf, 100).unwrap() {
            seen.push(BackendMessage::decode(&frame).unwrap());
        }
        assert_eq!(
            seen,
            vec![
                BackendMessage::CommandComplete(CommandComplete::new("SELECT 1")),
                BackendMessage::ReadyForQuery(ReadyForQuery {
                    status: TransactionStatus::Idle
                }),
            ]
        );
    }

    #[test]
    fn unknown_type_is_reported() {
        let frame = Frame::from_encoded(b"Q\0\0\0\x04"[..].into(), 100).unwrap();
        assert_eq!(
            BackendMessage::decode(&frame).unwrap_err().to_string(),
            "unknown backend message type 'Q' (byte 81)"
        );
    }
}
