//! The admin API and its client: `server` (axum over a Unix socket, token auth, the `/v1`
//! endpoints), `tls_listener` (the same API over TCP with TLS), `tokens` (per-user API tokens,
//! hashed at rest), `client` (what the CLI uses), and the plumbing they share: `http_client`
//! (HTTP/1.1 over any stream), `tls_client` (trust roots and outgoing TLS, also for webhooks)
//! and `private_file` (0600 files written atomically).
pub mod client;
pub mod http_client;
pub mod private_file;
pub mod server;
pub mod tls_client;
pub mod tls_listener;
pub mod tokens;

pub use client::{AdminClient, ClientError};
pub use server::{
    router, serve_admin, AdminError, AdminListener, AdminState, ReloadFn, SessionView,
};
pub use tls_listener::AdminTlsListener;
pub use tokens::{Caller, Scope, TokenInfo, TokenStore};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tls_tests;
