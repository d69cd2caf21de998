//! EmptyQueryResponse (B): the query string was empty.

use crate::postgres::empty_message::empty_message;
use crate::postgres::tags::backend::EMPTY_QUERY_RESPONSE;

empty_message!(
    /// EmptyQueryResponse (B): the query string was empty.
    EmptyQueryResponse,
    EMPTY_QUERY_RESPONSE,
    "EmptyQueryResponse"
);
