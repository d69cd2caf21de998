//! CopyDone (F/B): the end of a COPY data stream.

use crate::postgres::empty_message::empty_message;
use crate::postgres::tags::frontend::COPY_DONE;

empty_message!(
    /// CopyDone (F/B): the end of a COPY data stream.
    CopyDone,
    COPY_DONE,
    "CopyDone"
);
