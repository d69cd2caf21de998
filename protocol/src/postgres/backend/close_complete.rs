//! CloseComplete (B): a Close succeeded.

use crate::postgres::empty_message::empty_message;
use crate::postgres::tags::backend::CLOSE_COMPLETE;

empty_message!(
    /// CloseComplete (B): a Close succeeded.
    CloseComplete,
    CLOSE_COMPLETE,
    "CloseComplete"
);
