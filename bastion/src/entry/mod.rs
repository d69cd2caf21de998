//! Account entry shared by both protocols: routing names (`identity@target`), lockout and
//! backoff of guessing (`lockout`), short-lived login tokens for machine identities
//! (`machine_token`, `token_ledger`), SSH passwords (`password`), the proofs both listeners
//! share (`proofs`), the risk signals written on `entries` rows (`risk`) and the user
//! certificates russh refuses before the SSH handler sees them (`russh_refusals`). SCRAM and
//! SSH keys and certificates live with each protocol.
pub mod lockout;
pub mod machine_token;
pub mod password;
pub mod proofs;
pub mod risk;
mod route;
pub mod russh_refusals;
pub mod token_ledger;

pub use lockout::{LockoutStatus, Lockouts};
pub use proofs::EntryProofs;
pub use route::{parse_route, Route};
