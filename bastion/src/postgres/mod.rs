//! The PostgreSQL path. A connection goes through `accept` (SSLRequest → TLS, startup packet,
//! `identity@target` routing, SCRAM against the bastion's own verifiers, lockout, the `connect`
//! decision), then `upstream` (TLS to the target verified against its pinned root, login with the
//! bastion-held credential), then `relay` (every client message decided before its bytes go
//! upstream; server answers relayed and turned into outcomes). `cancel` maps the bastion's cancel
//! keys to the target's; `reply` builds the protocol's own refusals; `stream` is the byte pipe.
pub mod accept;
pub mod cancel;
pub mod ephemeral_role;
pub mod relay;
pub mod reply;
pub mod stream;
pub mod tls;
pub mod upstream;

pub use accept::serve_connection;
