//! NoData (B): the described statement or portal returns no rows.

use crate::postgres::empty_message::empty_message;
use crate::postgres::tags::backend::NO_DATA;

empty_message!(
    /// NoData (B): the described statement or portal returns no rows.
    NoData,
    NO_DATA,
    "NoData"
);
