//! PortalSuspended (B): an Execute reached its row limit.

use crate::postgres::empty_message::empty_message;
use crate::postgres::tags::backend::PORTAL_SUSPENDED;

empty_message!(
    /// PortalSuspended (B): an Execute reached its row limit.
    PortalSuspended,
    PORTAL_SUSPENDED,
    "PortalSuspended"
);
