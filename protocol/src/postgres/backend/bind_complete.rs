//! BindComplete (B): a Bind succeeded.

use crate::postgres::empty_message::empty_message;
use crate::postgres::tags::backend::BIND_COMPLETE;

empty_message!(
    /// BindComplete (B): a Bind succeeded.
    BindComplete,
    BIND_COMPLETE,
    "BindComplete"
);
