//! The per-session hash chain: `hash = SHA-256(tag ‖ canonical row ‖ prev_hash)`, where the
//! first row of a session chains to `SHA-256("bastion-chain-v1" ‖ session_id)`. Actions
//! (tag `A`) and outcomes (tag `O`) of one session share one chain in the order recorded.

use sha2::{Digest, Sha256};

use crate::canonical::{Canonical, Encoder};
use crate::rows::{ActionOutcome, ActionRow};

/// The hash a session's first chained row points back to.
pub(crate) fn genesis(session_id: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"bastion-chain-v1\0");
    h.update(session_id.as_bytes());
    h.finalize().into()
}

/// Rows that take part in a session chain.
pub(crate) trait ChainRow: Canonical {
    /// Distinguishes actions from outcomes so one can never pass for the other.
    const TAG: u8;
    /// The journal record type of the row.
    const RECORD_TYPE: u8;
    /// The session whose chain the row extends.
    fn session_id(&self) -> &str;
}

impl ChainRow for ActionRow {
    const TAG: u8 = b'A';
    const RECORD_TYPE: u8 = crate::record::TYPE_ACTION;
    fn session_id(&self) -> &str {
        &self.session_id
    }
}

impl ChainRow for ActionOutcome {
    const TAG: u8 = b'O';
    const RECORD_TYPE: u8 = crate::record::TYPE_OUTCOME;
    fn session_id(&self) -> &str {
        &self.session_id
    }
}

/// The chain hash of `row` following `prev`. `scratch` is reused between calls.
pub(crate) fn row_hash<T: ChainRow>(row: &T, prev: &[u8; 32], scratch: &mut Vec<u8>) -> [u8; 32] {
    scratch.clear();
    scratch.push(T::TAG);
    row.encode(&mut Encoder(scratch));
    scratch.extend_from_slice(prev);
    Sha256::digest(&scratch[..]).into()
}
