//! Flush (F): asks the server to send pending output without ending the batch.

use crate::postgres::empty_message::empty_message;
use crate::postgres::tags::frontend::FLUSH;

empty_message!(
    /// Flush (F): asks the server to send pending output without ending the batch.
    Flush,
    FLUSH,
    "Flush"
);
