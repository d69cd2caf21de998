//! ParseComplete (B): a Parse succeeded.

use crate::postgres::empty_message::empty_message;
use crate::postgres::tags::backend::PARSE_COMPLETE;

empty_message!(
    /// ParseComplete (B): a Parse succeeded.
    ParseComplete,
    PARSE_COMPLETE,
    "ParseComplete"
);
