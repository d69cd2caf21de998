//! Sync (F): ends an extended-protocol batch; the server answers ReadyForQuery.

use crate::postgres::empty_message::empty_message;
use crate::postgres::tags::frontend::SYNC;

empty_message!(
    /// Sync (F): ends an extended-protocol batch; the server answers ReadyForQuery.
    Sync,
    SYNC,
    "Sync"
);
