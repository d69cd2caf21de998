//! The byte pipe under a PostgreSQL connection: plain TCP or TLS, on either side, as one type.
use tokio::io::{AsyncRead, AsyncWrite};

/// A bidirectional async byte stream.
pub trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> AsyncStream for T {}

/// A boxed stream (TCP or TLS).
pub type BoxStream = Box<dyn AsyncStream>;

/// Writes all of `bytes` and flushes: TLS holds written bytes in its record buffer until
/// flushed, so an error sent just before closing would otherwise never arrive.
pub async fn send<S: AsyncWrite + Unpin + ?Sized>(
    stream: &mut S,
    bytes: &[u8],
) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    stream.write_all(bytes).await?;
    stream.flush().await
}
