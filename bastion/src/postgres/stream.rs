//! The byte pipe under a PostgreSQL connection: plain TCP or TLS, on either side, as one type.
use tokio::io::{AsyncRead, AsyncWrite};

/// A bidirectional async byte stream.
pub trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> AsyncStream for T {}

/// A boxed stream (TCP or TLS).
pub type BoxStream = Box<dyn AsyncStream>;
