//! The server side of SCRAM-SHA-256(-PLUS): checks a client's proof against a stored verifier.
//! An unknown user gets the same exchange against a decoy verifier derived from the user name
//! and a server secret, so the salt is stable per name and the failure is identical.

use std::fmt;

use subtle::ConstantTimeEq;

use super::error::ScramError;
use super::messages::{as_text, parse_client_final, parse_client_first, CbindFlag};
use super::primitives::{b64, hmac, nonce, sha256, unb64, unb64_key, xor, Key};
use super::verifier::Verifier;
use super::{SCRAM_SHA_256, SCRAM_SHA_256_PLUS};

/// A server secret for decoy verifiers, plus the iteration count real verifiers use (so the
/// decoy's `i=` looks the same). `Debug` hides the secret.
#[derive(Clone)]
pub struct DecoySecret {
    secret: Vec<u8>,
    iterations: u32,
}

impl fmt::Debug for DecoySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DecoySecret {{ secret: <redacted>, iterations: {} }}",
            self.iterations
        )
    }
}

impl DecoySecret {
    /// A decoy source from a persistent secret (keep it stable across restarts, or salts of
    /// unknown users change and reveal that they are unknown).
    pub fn new(secret: Vec<u8>, iterations: u32) -> Self {
        Self { secret, iterations }
    }

    /// The decoy verifier for `user`: deterministic salt and keys nobody can answer.
    fn verifier_for(&self, user: &str) -> Result<Verifier, ScramError> {
        let derive = |label: &str| {
            let mut input = label.as_bytes().to_vec();
            input.push(0);
            input.extend_from_slice(user.as_bytes());
            hmac(&self.secret, &input)
        };
        let salt = derive("salt")?;
        Ok(Verifier {
            iterations: self.iterations.max(1),
            salt: salt.get(..16).unwrap_or(&salt).to_vec(),
            stored_key: derive("stored-key")?,
            server_key: derive("server-key")?,
        })
    }
}

/// Where the exchange stands.
enum Phase {
    /// Waiting for SASLInitialResponse.
    ClientFirst,
    /// Server-first sent; waiting for the client proof.
    ClientFinal {
        client_first_bare: String,
        server_first: String,
        nonce: String,
        expected_cbind: Vec<u8>,
    },
    /// Finished (successfully or not); no further messages are accepted.
    Done,
}

/// One SCRAM exchange on the server side. `Debug` shows no key material.
pub struct ScramServer {
    verifier: Verifier,
    user_exists: bool,
    channel_binding: Option<Vec<u8>>,
    phase: Phase,
    server_nonce: Option<String>,
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.phase {
            Phase::ClientFirst => "client-first",
            Phase::ClientFinal { .. } => "client-final",
            Phase::Done => "done",
        };
        write!(f, "ScramServer {{ phase: {phase} }}")
    }
}

impl ScramServer {
    /// Starts an exchange for `user`. `verifier` is `None` when the user is unknown: the
    /// exchange then runs against a decoy from `decoy` and fails at the proof with
    /// `InvalidProof`, exactly like a wrong password. `channel_binding` is the
    /// `tls-server-end-point` hash of the bastion's certificate when the client is on TLS; it
    /// enables SCRAM-SHA-256-PLUS.
    pub fn new(
        user: &str,
        verifier: Option<&Verifier>,
        decoy: &DecoySecret,
        channel_binding: Option<Vec<u8>>,
    ) -> Result<Self, ScramError> {
        let (verifier, user_exists) = match verifier {
            Some(v) => (v.clone(), true),
            None => (decoy.verifier_for(user)?, false),
        };
        Ok(Self {
            verifier,
            user_exists,
            channel_binding,
            phase: Phase::ClientFirst,
            server_nonce: None,
        })
    }

    /// Fixes the server nonce (RFC test vectors only).
    #[cfg(test)]
    fn with_server_nonce(mut self, nonce: &str) -> Self {
        self.server_nonce = Some(nonce.to_owned());
        self
    }

    /// Mechanisms to offer in AuthenticationSASL, preferred first.
    pub fn mechanisms(&self) -> Vec<&'static str> {
        if self.channel_binding.is_some() {
            vec![SCRAM_SHA_256_PLUS, SCRAM_SHA_256]
        } else {
            vec![SCRAM_SHA_256]
        }
    }

    /// Handles SASLInitialResponse (`mechanism` and its data); returns server-first for
    /// AuthenticationSASLContinue.
    pub fn handle_client_first(
        &mut self,
        mechanism: &str,
        client_first: &[u8],
    ) -> Result<Vec<u8>, ScramError> {
        if !matches!(self.phase, Phase::ClientFirst) {
            return Err(ScramError::OutOfOrder(
                "client-first after the exchange started",
            ));
        }
        self.phase = Phase::Done;
        let parsed = parse_client_first(as_text(client_first, "client-first message")?)?;
        let cbind_data = self.check_channel_binding(mechanism, parsed.flag)?;
        let server_nonce = self.server_nonce.take().unwrap_or_else(nonce);
        let nonce = format!("{}{}", parsed.nonce, server_nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            b64(&self.verifier.salt),
            self.verifier.iterations
        );
        let mut expected_cbind = parsed.gs2_header.as_bytes().to_vec();
        expected_cbind.extend_from_slice(&cbind_data);
        self.phase = Phase::ClientFinal {
            client_first_bare: parsed.bare.to_owned(),
            server_first: server_first.clone(),
            nonce,
            expected_cbind,
        };
        Ok(server_first.into_bytes())
    }

    /// Checks the mechanism against the GS2 flag; returns the channel-binding data the client
    /// must echo after its GS2 header.
    fn check_channel_binding(
        &self,
        mechanism: &str,
        flag: CbindFlag,
    ) -> Result<Vec<u8>, ScramError> {
        match (mechanism, flag, self.channel_binding.as_deref()) {
            (SCRAM_SHA_256_PLUS, CbindFlag::TlsServerEndPoint, Some(data)) => Ok(data.to_vec()),
            (SCRAM_SHA_256_PLUS, _, Some(_)) => Err(ScramError::Malformed(
                "SCRAM-SHA-256-PLUS selected without channel binding in the GS2 header".into(),
            )),
            (SCRAM_SHA_256, CbindFlag::TlsServerEndPoint, _) => Err(ScramError::Malformed(
                "channel binding requested but SCRAM-SHA-256 (without PLUS) selected".into(),
            )),
            (SCRAM_SHA_256, CbindFlag::SupportedNotUsed, Some(_)) => {
                Err(ScramError::ChannelBindingDowngrade)
            }
            (SCRAM_SHA_256, _, _) => Ok(Vec::new()),
            (other, _, _) => Err(ScramError::UnsupportedMechanism(other.to_owned())),
        }
    }

    /// Handles SASLResponse (client-final); returns server-final for AuthenticationSASLFinal.
    /// A wrong password or an unknown user both give `InvalidProof`.
    pub fn handle_client_final(&mut self, client_final: &[u8]) -> Result<Vec<u8>, ScramError> {
        let Phase::ClientFinal {
            client_first_bare,
            server_first,
            nonce,
            expected_cbind,
        } = std::mem::replace(&mut self.phase, Phase::Done)
        else {
            return Err(ScramError::OutOfOrder("client-final before client-first"));
        };
        let parsed = parse_client_final(as_text(client_final, "client-final message")?)?;
        let cbind = unb64(parsed.channel_binding, "channel binding")?;
        if !bool::from(cbind.as_slice().ct_eq(expected_cbind.as_slice())) {
            return Err(ScramError::ChannelBindingMismatch);
        }
        if parsed.nonce != nonce {
            return Err(ScramError::NonceMismatch);
        }
        let proof: Key = unb64_key(parsed.proof, "client proof")?;
        let auth_message = format!(
            "{client_first_bare},{server_first},{}",
            parsed.without_proof
        );
        let client_signature = hmac(&self.verifier.stored_key, auth_message.as_bytes())?;
        let client_key = xor(&proof, &client_signature);
        let proof_ok: bool = sha256(&client_key).ct_eq(&self.verifier.stored_key).into();
        let server_signature = hmac(&self.verifier.server_key, auth_message.as_bytes())?;
        if !(proof_ok & self.user_exists) {
            return Err(ScramError::InvalidProof);
        }
        Ok(format!("v={}", b64(&server_signature)).into_bytes())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::postgres::scram::client::{ChannelBinding, ScramClient};

    const RFC_SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";

    fn decoy() -> DecoySecret {
        DecoySecret::new(b"server secret".to_vec(), 4096)
    }

    fn pencil() -> Verifier {
        Verifier::from_password("pencil", &unb64(RFC_SALT, "salt").unwrap(), 4096).unwrap()
    }

    #[test]
    fn rfc7677_server_vector() {
        let mut server = ScramServer::new("user", Some(&pencil()), &decoy(), None)
            .unwrap()
            .with_server_nonce("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
        let server_first = server
            .handle_client_first("SCRAM-SHA-256", b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
            .unwrap();
        assert_eq!(
            server_first,
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let server_final = server
            .handle_client_final(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            )
            .unwrap();
        assert_eq!(
            server_final,
            b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    fn run(server: &mut ScramServer, client: &mut ScramClient) -> Result<(), ScramError> {
        let first = client.client_first();
        let server_first = server.handle_client_first(client.mechanism(), &first)?;
        let client_final = client.handle_server_first(&server_first)?;
        let server_final = server.handle_client_final(&client_final)?;
        client.verify_server_final(&server_final)
    }

    #[test]
    fn client_and_server_agree() {
        let v = Verifier::parse(&crate::postgres::scram::make_verifier("s3cret", 4096).unwrap())
            .unwrap();
        let mut server = ScramServer::new("alice", Some(&v), &decoy(), None).unwrap();
        let mut client = ScramClient::new("s3cret", ChannelBinding::NotSupported);
        run(&mut server, &mut client).unwrap();
        assert!(
            server.handle_client_final(b"c=biws,r=x,p=x").is_err(),
            "no replay after done"
        );
    }

    #[test]
    fn wrong_password_and_unknown_user_fail_alike() {
        let v = pencil();
        let mut server = ScramServer::new("alice", Some(&v), &decoy(), None).unwrap();
        let mut client = ScramClient::new("wrong", ChannelBinding::NotSupported);
        let wrong = run(&mut server, &mut client).unwrap_err();

        let mut server = ScramServer::new("mallory", None, &decoy(), None).unwrap();
        let first = server
            .handle_client_first("SCRAM-SHA-256", b"n,,n=,r=abc")
            .unwrap();
        let text = String::from_utf8(first).unwrap();
        assert!(text.ends_with(",i=4096"), "{text}");
        let mut client = ScramClient::new("anything", ChannelBinding::NotSupported);
        let mut server = ScramServer::new("mallory", None, &decoy(), None).unwrap();
        let unknown = run(&mut server, &mut client).unwrap_err();
        assert_eq!(wrong, ScramError::InvalidProof);
        assert_eq!(unknown, ScramError::InvalidProof);
        assert_eq!(unknown.to_string(), "password authentication failed");
    }

    #[test]
    fn decoy_salt_is_stable_per_user_and_differs_between_users() {
        let salt_of = |user: &str| {
            let mut s = ScramServer::new(user, None, &decoy(), None).unwrap();
            let first = String::from_utf8(
                s.handle_client_first("SCRAM-SHA-256", b"n,,n=,r=abc")
                    .unwrap(),
            )
            .unwrap();
            first.split(',').nth(1).unwrap().to_owned()
        };
        assert_eq!(salt_of("mallory"), salt_of("mallory"));
        assert_ne!(salt_of("mallory"), salt_of("trudy"));
    }

    #[test]
    fn channel_binding_plus_round_trip_and_mismatch() {
        let v = pencil();
        let cert_hash = vec![7u8; 32];
        let mut server =
            ScramServer::new("u", Some(&v), &decoy(), Some(cert_hash.clone())).unwrap();
        assert_eq!(
            server.mechanisms(),
            vec!["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]
        );
        let mut client = ScramClient::new("pencil", ChannelBinding::TlsServerEndPoint(cert_hash));
        assert_eq!(client.mechanism(), "SCRAM-SHA-256-PLUS");
        run(&mut server, &mut client).unwrap();

        // A man in the middle terminating TLS has another certificate hash.
        let mut server = ScramServer::new("u", Some(&v), &decoy(), Some(vec![7u8; 32])).unwrap();
        let mut client =
            ScramClient::new("pencil", ChannelBinding::TlsServerEndPoint(vec![8u8; 32]));
        assert_eq!(
            run(&mut server, &mut client).unwrap_err(),
            ScramError::ChannelBindingMismatch
        );
    }

    #[test]
    fn downgrade_and_inconsistent_flags_are_refused() {
        let v = pencil();
        let with_tls = || ScramServer::new("u", Some(&v), &decoy(), Some(vec![1; 32])).unwrap();
        let without_tls = || ScramServer::new("u", Some(&v), &decoy(), None).unwrap();
        // y while the server offers PLUS: someone stripped PLUS from the offer.
        assert_eq!(
            with_tls()
                .handle_client_first("SCRAM-SHA-256", b"y,,n=,r=abc")
                .unwrap_err(),
            ScramError::ChannelBindingDowngrade
        );
        // y without TLS, and n anywhere, are fine.
        assert!(without_tls()
            .handle_client_first("SCRAM-SHA-256", b"y,,n=,r=abc")
            .is_ok());
        assert!(with_tls()
            .handle_client_first("SCRAM-SHA-256", b"n,,n=,r=abc")
            .is_ok());
        // PLUS not offered without TLS.
        assert_eq!(
            without_tls()
                .handle_client_first("SCRAM-SHA-256-PLUS", b"p=tls-server-end-point,,n=,r=abc")
                .unwrap_err(),
            ScramError::UnsupportedMechanism("SCRAM-SHA-256-PLUS".into())
        );
        // PLUS with an n flag, plain with a p flag.
        assert!(with_tls()
            .handle_client_first("SCRAM-SHA-256-PLUS", b"n,,n=,r=abc")
            .is_err());
        assert!(with_tls()
            .handle_client_first("SCRAM-SHA-256", b"p=tls-server-end-point,,n=,r=abc")
            .is_err());
        assert!(with_tls()
            .handle_client_first("SCRAM-SHA-1", b"n,,n=,r=abc")
            .is_err());
    }

    #[test]
    fn client_final_tampering_is_refused() {
        let v = pencil();
        let start = || {
            let mut s = ScramServer::new("user", Some(&v), &decoy(), None)
                .unwrap()
                .with_server_nonce("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
            s.handle_client_first("SCRAM-SHA-256", b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
                .unwrap();
            s
        };
        let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let proof = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        // Claiming channel binding in the final message after n in the first ("eSws" = "y,,").
        let err = start().handle_client_final(format!("c=eSws,r={nonce},p={proof}").as_bytes());
        assert_eq!(err.unwrap_err(), ScramError::ChannelBindingMismatch);
        let err = start().handle_client_final(format!("c=biws,r={nonce}X,p={proof}").as_bytes());
        assert_eq!(err.unwrap_err(), ScramError::NonceMismatch);
        let err = start().handle_client_final(format!("c=biws,r={nonce},p=AAAA").as_bytes());
        assert!(matches!(err.unwrap_err(), ScramError::Malformed(_)));
        // Flipping one proof bit.
        let bad = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVU=";
        let err = start().handle_client_final(format!("c=biws,r={nonce},p={bad}").as_bytes());
        assert_eq!(err.unwrap_err(), ScramError::InvalidProof);
        // Out of order.
        let mut fresh = ScramServer::new("u", Some(&v), &decoy(), None).unwrap();
        assert!(matches!(
            fresh.handle_client_final(b"c=biws,r=a,p=b"),
            Err(ScramError::OutOfOrder(_))
        ));
    }

    #[test]
    fn debug_prints_no_secret() {
        let server = ScramServer::new("u", Some(&pencil()), &decoy(), None).unwrap();
        assert_eq!(format!("{server:?}"), "ScramServer { phase: client-first }");
        assert!(!format!("{:?}", decoy()).contains("server secret"));
    }
}
