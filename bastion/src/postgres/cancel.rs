//! Cancel keys. Each client gets the bastion's own `BackendKeyData` (random pid and secret);
//! a CancelRequest that presents one is mapped to the target's key and sent to the target on a
//! new connection, so Ctrl-C in psql reaches the right backend without the client ever learning
//! the target's key or address.
use bytes::BytesMut;
use protocol::postgres::StartupPacket;
use std::collections::HashMap;
use std::sync::Mutex;
use subtle::ConstantTimeEq;
use tokio::io::AsyncWriteExt;

/// Where a cancel goes.
#[derive(Debug, Clone)]
pub struct UpstreamKey {
    /// Target address (`host:port`).
    pub address: String,
    /// Target backend pid.
    pub pid: i32,
    /// Target secret key.
    pub secret: Vec<u8>,
}

/// Bastion key -> upstream key, for live sessions.
#[derive(Debug, Default)]
pub struct CancelKeys {
    map: Mutex<HashMap<i32, (Vec<u8>, UpstreamKey)>>,
}

/// Removes the key when the session ends.
pub struct CancelKeyGuard<'a> {
    keys: &'a CancelKeys,
    pid: i32,
}

impl Drop for CancelKeyGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.keys.map.lock() {
            m.remove(&self.pid);
        }
    }
}

impl CancelKeys {
    /// Issues a fresh bastion key for `upstream`; returns (pid, secret) and the guard.
    pub fn issue(&self, upstream: UpstreamKey) -> (i32, Vec<u8>, CancelKeyGuard<'_>) {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let pid = loop {
            let pid: i32 = rng.gen_range(1..i32::MAX);
            if !map.contains_key(&pid) {
                break pid;
            }
        };
        let secret: Vec<u8> = (0..4).map(|_| rng.gen()).collect();
        map.insert(pid, (secret.clone(), upstream));
        (pid, secret, CancelKeyGuard { keys: self, pid })
    }

    /// The upstream key for a presented bastion key (secret compared in constant time).
    pub fn lookup(&self, pid: i32, secret: &[u8]) -> Option<UpstreamKey> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let (expected, upstream) = map.get(&pid)?;
        bool::from(expected.as_slice().ct_eq(secret)).then(|| upstream.clone())
    }
}

/// Sends a CancelRequest for `key` to its target. Failures are logged only: PostgreSQL gives
/// the canceller no answer either.
pub async fn send_cancel(key: &UpstreamKey) {
    let mut buf = BytesMut::new();
    StartupPacket::encode_cancel(&mut buf, key.pid, &key.secret);
    match tokio::net::TcpStream::connect(&key.address).await {
        Ok(mut s) => {
            if let Err(e) = s.write_all(&buf).await {
                tracing::warn!(error = %e, "cancel request to {} failed", key.address);
            }
            let _ = s.shutdown().await;
        }
        Err(e) => tracing::warn!(error = %e, "cannot reach {} to cancel", key.address),
    }
}
