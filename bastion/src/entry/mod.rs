//! Account entry shared by both protocols: routing names (`identity@target`), lockout and
//! backoff of guessing (`lockout`). The protocol-specific proofs live with each protocol.
pub mod lockout;
mod route;

pub use lockout::{LockoutStatus, Lockouts};
pub use route::{parse_route, Route};
