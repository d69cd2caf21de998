//! The client side of SCRAM-SHA-256(-PLUS), used by the bastion to log in to an upstream server
//! with the credential only it holds.

use std::fmt;

use subtle::ConstantTimeEq;

use super::error::ScramError;
use super::messages::{as_text, parse_server_final, parse_server_first, ServerFinal};
use super::primitives::{
    b64, client_and_server_keys, hmac, nonce, salted_password, sha256, unb64, unb64_key, xor, Key,
};
use super::{SCRAM_SHA_256, SCRAM_SHA_256_PLUS, TLS_SERVER_END_POINT};

/// The highest iteration count accepted from a server: a hostile upstream must not be able to
/// pin a bastion core for minutes.
const MAX_ITERATIONS: u32 = 1_000_000;

/// How the client uses channel binding.
#[derive(Clone, PartialEq, Eq)]
pub enum ChannelBinding {
    /// No TLS, or binding unavailable: GS2 flag `n`.
    NotSupported,
    /// TLS, but the server did not offer SCRAM-SHA-256-PLUS: flag `y` (lets the server detect
    /// a downgrade).
    NotOffered,
    /// Bind to the server certificate: `p=tls-server-end-point` with this certificate hash.
    TlsServerEndPoint(Vec<u8>),
}

impl fmt::Debug for ChannelBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotSupported => f.write_str("NotSupported"),
            Self::NotOffered => f.write_str("NotOffered"),
            Self::TlsServerEndPoint(h) => write!(f, "TlsServerEndPoint(<{} bytes>)", h.len()),
        }
    }
}

impl ChannelBinding {
    /// Picks the binding for a connection: `cert_hash` is the `tls-server-end-point` hash when
    /// the connection is TLS; `offered` the mechanisms from AuthenticationSASL.
    pub fn choose(cert_hash: Option<Vec<u8>>, offered: &[String]) -> Self {
        match cert_hash {
            None => Self::NotSupported,
            Some(hash) if offered.iter().any(|m| m == SCRAM_SHA_256_PLUS) => {
                Self::TlsServerEndPoint(hash)
            }
            Some(_) => Self::NotOffered,
        }
    }

    fn gs2_header(&self) -> String {
        match self {
            Self::NotSupported => "n,,".to_owned(),
            Self::NotOffered => "y,,".to_owned(),
            Self::TlsServerEndPoint(_) => format!("p={TLS_SERVER_END_POINT},,"),
        }
    }
}

enum Phase {
    Start,
    ServerFirst { client_first_bare: String },
    ServerFinal { server_signature: Key },
    Done,
}

/// One SCRAM exchange on the client side. `Debug` hides the password.
pub struct ScramClient {
    password: String,
    channel_binding: ChannelBinding,
    user: String,
    nonce: String,
    phase: Phase,
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient")
            .field("password", &"<redacted>")
            .field("channel_binding", &self.channel_binding)
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// Starts an exchange with `password`. The SCRAM user name is left empty, as libpq does:
    /// the server takes the user from the startup packet.
    pub fn new(password: &str, channel_binding: ChannelBinding) -> Self {
        Self {
            password: password.to_owned(),
            channel_binding,
            user: String::new(),
            nonce: nonce(),
            phase: Phase::Start,
        }
    }

    /// Fixes the user name and nonce (RFC test vectors only).
    #[cfg(test)]
    pub(crate) fn with_user_and_nonce(mut self, user: &str, nonce: &str) -> Self {
        self.user = user.to_owned();
        self.nonce = nonce.to_owned();
        self
    }

    /// The mechanism to name in SASLInitialResponse.
    pub fn mechanism(&self) -> &'static str {
        match self.channel_binding {
            ChannelBinding::TlsServerEndPoint(_) => SCRAM_SHA_256_PLUS,
            _ => SCRAM_SHA_256,
        }
    }

    /// The client-first message (data of SASLInitialResponse).
    pub fn client_first(&mut self) -> Vec<u8> {
        let bare = format!("n={},r={}", self.user, self.nonce);
        let message = format!("{}{bare}", self.channel_binding.gs2_header());
        self.phase = Phase::ServerFirst {
            client_first_bare: bare,
        };
        message.into_bytes()
    }

    /// Handles server-first (AuthenticationSASLContinue); returns client-final for SASLResponse.
    pub fn handle_server_first(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        let Phase::ServerFirst { client_first_bare } =
            std::mem::replace(&mut self.phase, Phase::Done)
        else {
            return Err(ScramError::OutOfOrder("server-first before client-first"));
        };
        let text = as_text(server_first, "server-first message")?;
        let parsed = parse_server_first(text)?;
        if !parsed.nonce.starts_with(&self.nonce) || parsed.nonce.len() <= self.nonce.len() {
            return Err(ScramError::NonceMismatch);
        }
        if parsed.iterations > MAX_ITERATIONS {
            return Err(ScramError::Malformed(format!(
                "iteration count {} is over the limit of {MAX_ITERATIONS}",
                parsed.iterations
            )));
        }
        let salt = unb64(parsed.salt, "salt")?;
        let salted = salted_password(self.password.as_bytes(), &salt, parsed.iterations)?;
        let (client_key, server_key) = client_and_server_keys(&salted)?;
        let mut cbind = self.channel_binding.gs2_header().into_bytes();
        if let ChannelBinding::TlsServerEndPoint(hash) = &self.channel_binding {
            cbind.extend_from_slice(hash);
        }
        let without_proof = format!("c={},r={}", b64(&cbind), parsed.nonce);
        let auth_message = format!("{client_first_bare},{text},{without_proof}");
        let client_signature = hmac(&sha256(&client_key), auth_message.as_bytes())?;
        let proof = xor(&client_key, &client_signature);
        self.phase = Phase::ServerFinal {
            server_signature: hmac(&server_key, auth_message.as_bytes())?,
        };
        Ok(format!("{without_proof},p={}", b64(&proof)).into_bytes())
    }

    /// Checks server-final (AuthenticationSASLFinal): the server must prove it knows the
    /// verifier, or the login is refused even if the server then says AuthenticationOk.
    pub fn verify_server_final(&mut self, server_final: &[u8]) -> Result<(), ScramError> {
        let Phase::ServerFinal { server_signature } =
            std::mem::replace(&mut self.phase, Phase::Done)
        else {
            return Err(ScramError::OutOfOrder("server-final before client-final"));
        };
        match parse_server_final(as_text(server_final, "server-final message")?)? {
            ServerFinal::Error(e) => Err(ScramError::ServerError(e.to_owned())),
            ServerFinal::Verifier(v) => {
                let received = unb64_key(v, "server signature")?;
                if bool::from(received.ct_eq(&server_signature)) {
                    Ok(())
                } else {
                    Err(ScramError::InvalidServerSignature)
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc7677_client_vector() {
        let mut client = ScramClient::new("pencil", ChannelBinding::NotSupported)
            .with_user_and_nonce("user", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(client.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let client_final = client
            .handle_server_first(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            )
            .unwrap();
        assert_eq!(
            client_final,
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        client
            .verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
    }

    #[test]
    fn a_server_that_does_not_know_the_password_is_caught() {
        let mut client = ScramClient::new("pencil", ChannelBinding::NotSupported)
            .with_user_and_nonce("user", "rOprNGfwEbeRWgbNEkqO");
        client.client_first();
        client
            .handle_server_first(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            )
            .unwrap();
        assert_eq!(
            client
                .verify_server_final(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
                .unwrap_err(),
            ScramError::InvalidServerSignature
        );
    }

    #[test]
    fn hostile_server_first_messages_are_refused() {
        let start = || {
            let mut c =
                ScramClient::new("pw", ChannelBinding::NotSupported).with_user_and_nonce("", "abc");
            c.client_first();
            c
        };
        assert_eq!(
            start()
                .handle_server_first(b"r=xyz123,s=c2FsdA==,i=4096")
                .unwrap_err(),
            ScramError::NonceMismatch
        );
        assert_eq!(
            start()
                .handle_server_first(b"r=abc,s=c2FsdA==,i=4096")
                .unwrap_err(),
            ScramError::NonceMismatch,
            "the server must add its own nonce"
        );
        assert!(start()
            .handle_server_first(b"r=abcdef,s=c2FsdA==,i=4000000000")
            .unwrap_err()
            .to_string()
            .contains("over the limit"));
        assert_eq!(
            start()
                .handle_server_first(b"e=other-error")
                .unwrap_err()
                .to_string(),
            "malformed SCRAM message: expected nonce (r=...)"
        );
    }

    #[test]
    fn choose_binding_and_debug_hides_password() {
        let plus = vec!["SCRAM-SHA-256-PLUS".to_owned(), "SCRAM-SHA-256".to_owned()];
        let plain = vec!["SCRAM-SHA-256".to_owned()];
        assert_eq!(
            ChannelBinding::choose(None, &plus),
            ChannelBinding::NotSupported
        );
        assert_eq!(
            ChannelBinding::choose(Some(vec![1]), &plain),
            ChannelBinding::NotOffered
        );
        assert_eq!(
            ChannelBinding::choose(Some(vec![1]), &plus),
            ChannelBinding::TlsServerEndPoint(vec![1])
        );
        let client = ScramClient::new("hunter2", ChannelBinding::NotSupported);
        assert!(!format!("{client:?}").contains("hunter2"));
    }
}
