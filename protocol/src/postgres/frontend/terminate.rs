//! Terminate (F): the client closes the session.

use crate::postgres::empty_message::empty_message;
use crate::postgres::tags::frontend::TERMINATE;

empty_message!(
    /// Terminate (F): the client closes the session.
    Terminate,
    TERMINATE,
    "Terminate"
);
