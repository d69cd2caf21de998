//! Authentication (B): every `R` message — the server's request for a password or SASL step,
//! and AuthenticationOk.

use bytes::{BufMut, Bytes, BytesMut};

use crate::postgres::message_writer::{put_cstr, write_message};
use crate::postgres::tags::backend::AUTHENTICATION;
use crate::postgres::{Frame, ProtocolError};

const OK: i32 = 0;
const CLEARTEXT_PASSWORD: i32 = 3;
const MD5_PASSWORD: i32 = 5;
const SASL: i32 = 10;
const SASL_CONTINUE: i32 = 11;
const SASL_FINAL: i32 = 12;

/// An authentication request or result. Kerberos, GSSAPI and SSPI requests are not supported
/// and decode as an error naming their code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// Authentication succeeded.
    Ok,
    /// Send the password in clear text.
    CleartextPassword,
    /// Send `md5(md5(password || user) || salt)`.
    Md5Password {
        /// The 4-byte salt.
        salt: [u8; 4],
    },
    /// Start SASL with one of these mechanisms.
    Sasl {
        /// Offered mechanisms, e.g. `SCRAM-SHA-256-PLUS`, `SCRAM-SHA-256`.
        mechanisms: Vec<String>,
    },
    /// A SASL challenge (SCRAM server-first).
    SaslContinue {
        /// Mechanism data.
        data: Bytes,
    },
    /// The SASL outcome (SCRAM server-final).
    SaslFinal {
        /// Mechanism data.
        data: Bytes,
    },
}

impl Authentication {
    /// Decodes an `R` frame.
    pub fn decode(frame: &Frame) -> Result<Self, ProtocolError> {
        let mut r = frame.reader("Authentication", AUTHENTICATION)?;
        let code = r.i32("request code")?;
        let message = match code {
            OK => Self::Ok,
            CLEARTEXT_PASSWORD => Self::CleartextPassword,
            MD5_PASSWORD => {
                let salt = r.bytes(4, "salt")?;
                let mut out = [0u8; 4];
                out.copy_from_slice(&salt);
                Self::Md5Password { salt: out }
            }
            SASL => {
                let mut mechanisms = Vec::new();
                loop {
                    let name = r.cstr("mechanism")?;
                    if name.is_empty() {
                        break;
                    }
                    mechanisms.push(name);
                }
                Self::Sasl { mechanisms }
            }
            SASL_CONTINUE => Self::SaslContinue { data: r.rest() },
            SASL_FINAL => Self::SaslFinal { data: r.rest() },
            other => {
                return Err(r.invalid(
                    "request code",
                    format!("{other} is not a supported authentication method"),
                ))
            }
        };
        r.finish()?;
        Ok(message)
    }

    /// Appends the encoded message to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        write_message(buf, AUTHENTICATION, |b| match self {
            Self::Ok => b.put_i32(OK),
            Self::CleartextPassword => b.put_i32(CLEARTEXT_PASSWORD),
            Self::Md5Password { salt } => {
                b.put_i32(MD5_PASSWORD);
                b.put_slice(salt);
            }
            Self::Sasl { mechanisms } => {
                b.put_i32(SASL);
                for m in mechanisms {
                    put_cstr(b, m);
                }
                b.put_u8(0);
            }
            Self::SaslContinue { data } => {
                b.put_i32(SASL_CONTINUE);
                b.put_slice(data);
            }
            Self::SaslFinal { data } => {
                b.put_i32(SASL_FINAL);
                b.put_slice(data);
            }
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_kind() {
        for msg in [
            Authentication::Ok,
            Authentication::CleartextPassword,
            Authentication::Md5Password { salt: [1, 2, 3, 4] },
            Authentication::Sasl {
                mechanisms: vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()],
            },
            Authentication::SaslContinue {
                data: Bytes::from_static(b"r=abc,s=c2FsdA==,i=4096"),
            },
            Authentication::SaslFinal {
                data: Bytes::from_static(b"v=abc"),
            },
        ] {
            let mut buf = BytesMut::new();
            msg.encode(&mut buf);
            let frame = Frame::from_encoded(buf.freeze(), 100).unwrap();
            assert_eq!(Authentication::decode(&frame).unwrap(), msg);
        }
    }

    #[test]
    fn ok_is_the_well_known_bytes() {
        let mut buf = BytesMut::new();
        Authentication::Ok.encode(&mut buf);
        assert_eq!(&buf[..], b"R\0\0\0\x08\0\0\0\0");
    }

    #[test]
    fn unsupported_methods_and_unterminated_lists_are_errors() {
        let frame = Frame::from_encoded(b"R\0\0\0\x08\0\0\0\x07"[..].into(), 100).unwrap();
        assert_eq!(
            Authentication::decode(&frame).unwrap_err().to_string(),
            "Authentication message: invalid request code: 7 is not a supported authentication method"
        );
        let frame = Frame::from_encoded(b"R\0\0\0\x0b\0\0\0\x0aAB\0"[..].into(), 100).unwrap();
        assert!(Authentication::decode(&frame).is_err());
    }
}
