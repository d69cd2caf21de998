//! The SCRAM-SHA-256 building blocks: H, HMAC, Hi (PBKDF2), XOR, base64 and nonces.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::error::ScramError;

/// Output length of SHA-256.
pub(crate) const KEY_LEN: usize = 32;

/// A 32-byte key or signature.
pub(crate) type Key = [u8; KEY_LEN];

/// `H(data)`.
pub(crate) fn sha256(data: &[u8]) -> Key {
    Sha256::digest(data).into()
}

/// `HMAC(key, data)`.
pub(crate) fn hmac(key: &[u8], data: &[u8]) -> Result<Key, ScramError> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| ScramError::Crypto("hmac key"))?;
    mac.update(data);
    Ok(mac.finalize().into_bytes().into())
}

/// `Hi(password, salt, i)`: the salted password.
pub(crate) fn salted_password(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Result<Key, ScramError> {
    let mut out = [0u8; KEY_LEN];
    pbkdf2::pbkdf2::<Hmac<Sha256>>(password, salt, iterations, &mut out)
        .map_err(|_| ScramError::Crypto("pbkdf2"))?;
    Ok(out)
}

/// `(ClientKey, ServerKey)` from a salted password.
pub(crate) fn client_and_server_keys(salted: &Key) -> Result<(Key, Key), ScramError> {
    Ok((hmac(salted, b"Client Key")?, hmac(salted, b"Server Key")?))
}

/// `a XOR b`.
pub(crate) fn xor(a: &Key, b: &Key) -> Key {
    let mut out = [0u8; KEY_LEN];
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = x ^ y;
    }
    out
}

/// Standard base64 with padding.
pub(crate) fn b64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Decodes standard base64, naming `what` in the error.
pub(crate) fn unb64(text: &str, what: &str) -> Result<Vec<u8>, ScramError> {
    STANDARD
        .decode(text)
        .map_err(|_| ScramError::Malformed(format!("{what} is not valid base64")))
}

/// Decodes a base64 32-byte key.
pub(crate) fn unb64_key(text: &str, what: &str) -> Result<Key, ScramError> {
    let raw = unb64(text, what)?;
    Key::try_from(raw.as_slice())
        .map_err(|_| ScramError::Malformed(format!("{what} is {} bytes, expected 32", raw.len())))
}

/// A fresh nonce: 18 random bytes in base64 (printable, no comma), as PostgreSQL makes them.
pub(crate) fn nonce() -> String {
    let mut raw = [0u8; 18];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    b64(&raw)
}

/// Random bytes (salts).
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut raw = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    raw
}
