//! The SCRAM message grammar (RFC 5802 §7): the GS2 header, client-first, server-first,
//! client-final and server-final, split into their attributes.

use super::error::ScramError;
use super::TLS_SERVER_END_POINT;

fn malformed(detail: impl Into<String>) -> ScramError {
    ScramError::Malformed(detail.into())
}

/// The GS2 channel-binding flag of a client-first message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CbindFlag {
    /// `n`: the client does not support channel binding.
    NotSupported,
    /// `y`: the client supports it but believes the server does not.
    SupportedNotUsed,
    /// `p=tls-server-end-point`: the client binds to the TLS server certificate.
    TlsServerEndPoint,
}

/// A parsed client-first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientFirst<'a> {
    /// Channel-binding flag.
    pub flag: CbindFlag,
    /// The GS2 header exactly as sent (`n,,`, `p=tls-server-end-point,,`), echoed in `c=`.
    pub gs2_header: &'a str,
    /// Everything after the GS2 header; part of the AuthMessage.
    pub bare: &'a str,
    /// The client nonce.
    pub nonce: &'a str,
}

/// A nonce is printable ASCII without a comma (RFC 5802 `printable`).
fn check_nonce(nonce: &str, whose: &str) -> Result<(), ScramError> {
    if nonce.is_empty()
        || !nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
    {
        return Err(malformed(format!(
            "{whose} nonce is empty or not printable"
        )));
    }
    Ok(())
}

/// Takes `key=` off the front of `attr`.
fn attr<'a>(text: Option<&'a str>, key: &str, what: &str) -> Result<&'a str, ScramError> {
    text.and_then(|t| t.strip_prefix(key))
        .ok_or_else(|| malformed(format!("expected {what} ({key}...)")))
}

pub(crate) fn as_text<'a>(data: &'a [u8], what: &str) -> Result<&'a str, ScramError> {
    std::str::from_utf8(data).map_err(|_| malformed(format!("{what} is not valid UTF-8")))
}

/// Parses `gs2-header client-first-bare`.
pub(crate) fn parse_client_first(text: &str) -> Result<ClientFirst<'_>, ScramError> {
    let (flag_text, rest) = text
        .split_once(',')
        .ok_or_else(|| malformed("client-first message has no GS2 header"))?;
    let flag = match flag_text {
        "n" => CbindFlag::NotSupported,
        "y" => CbindFlag::SupportedNotUsed,
        other => match other.strip_prefix("p=") {
            Some(TLS_SERVER_END_POINT) => CbindFlag::TlsServerEndPoint,
            Some(kind) => {
                return Err(ScramError::ChannelBindingUnsupported(format!(
                    "type {kind:?}; only {TLS_SERVER_END_POINT} is supported"
                )))
            }
            None => return Err(malformed(format!("unknown channel binding flag {other:?}"))),
        },
    };
    let (authzid, bare) = rest
        .split_once(',')
        .ok_or_else(|| malformed("client-first message has an incomplete GS2 header"))?;
    if !authzid.is_empty() {
        return Err(malformed("authorization identity (a=) is not supported"));
    }
    let gs2_len = flag_text
        .len()
        .saturating_add(authzid.len())
        .saturating_add(2);
    let gs2_header = text.get(..gs2_len).unwrap_or_default();
    let mut attrs = bare.split(',');
    let first = attrs.next();
    if first.is_some_and(|a| a.starts_with("m=")) {
        return Err(malformed("mandatory extensions (m=) are not supported"));
    }
    // PostgreSQL ignores the SCRAM user name: the startup packet's user is authoritative.
    attr(first, "n=", "user name")?;
    let nonce = attr(attrs.next(), "r=", "client nonce")?;
    check_nonce(nonce, "client")?;
    Ok(ClientFirst {
        flag,
        gs2_header,
        bare,
        nonce,
    })
}

/// A parsed server-first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerFirst<'a> {
    /// Client nonce followed by server nonce.
    pub nonce: &'a str,
    /// Base64 salt.
    pub salt: &'a str,
    /// Iteration count.
    pub iterations: u32,
}

/// Parses `r=...,s=...,i=...[,ext]`.
pub(crate) fn parse_server_first(text: &str) -> Result<ServerFirst<'_>, ScramError> {
    let mut attrs = text.split(',');
    let first = attrs.next();
    if first.is_some_and(|a| a.starts_with("m=")) {
        return Err(malformed("mandatory extensions (m=) are not supported"));
    }
    let nonce = attr(first, "r=", "nonce")?;
    check_nonce(nonce, "server")?;
    let salt = attr(attrs.next(), "s=", "salt")?;
    let iterations = attr(attrs.next(), "i=", "iteration count")?
        .parse::<u32>()
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| malformed("iteration count is not a positive integer"))?;
    Ok(ServerFirst {
        nonce,
        salt,
        iterations,
    })
}

/// A parsed client-final message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientFinal<'a> {
    /// Base64 channel-binding data (`c=`).
    pub channel_binding: &'a str,
    /// The combined nonce.
    pub nonce: &'a str,
    /// The message up to (not including) `,p=`; part of the AuthMessage.
    pub without_proof: &'a str,
    /// Base64 client proof.
    pub proof: &'a str,
}

/// Parses `c=...,r=...[,ext],p=...`.
pub(crate) fn parse_client_final(text: &str) -> Result<ClientFinal<'_>, ScramError> {
    let (without_proof, proof) = text
        .rsplit_once(",p=")
        .ok_or_else(|| malformed("client-final message has no proof (p=)"))?;
    if proof.contains(',') {
        return Err(malformed("the proof must be the last attribute"));
    }
    let mut attrs = without_proof.split(',');
    let channel_binding = attr(attrs.next(), "c=", "channel binding")?;
    let nonce = attr(attrs.next(), "r=", "nonce")?;
    Ok(ClientFinal {
        channel_binding,
        nonce,
        without_proof,
        proof,
    })
}

/// A parsed server-final message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServerFinal<'a> {
    /// `v=`: the base64 server signature.
    Verifier(&'a str),
    /// `e=`: the server's error value.
    Error(&'a str),
}

/// Parses `v=...` or `e=...`.
pub(crate) fn parse_server_final(text: &str) -> Result<ServerFinal<'_>, ScramError> {
    let first = text.split(',').next().unwrap_or_default();
    if let Some(v) = first.strip_prefix("v=") {
        Ok(ServerFinal::Verifier(v))
    } else if let Some(e) = first.strip_prefix("e=") {
        Ok(ServerFinal::Error(e))
    } else {
        Err(malformed("server-final message has neither v= nor e="))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn client_first_parts() {
        let cf = parse_client_first("p=tls-server-end-point,,n=,r=abc").unwrap();
        assert_eq!(cf.flag, CbindFlag::TlsServerEndPoint);
        assert_eq!(cf.gs2_header, "p=tls-server-end-point,,");
        assert_eq!(cf.bare, "n=,r=abc");
        assert_eq!(cf.nonce, "abc");
        let cf = parse_client_first("n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        assert_eq!(cf.gs2_header, "n,,");
        assert_eq!(cf.flag, CbindFlag::NotSupported);
    }

    #[test]
    fn client_first_rejections() {
        for (text, why) in [
            ("", "GS2"),
            ("n", "GS2"),
            ("n,", "incomplete"),
            ("x,,n=,r=a", "unknown channel binding flag"),
            ("p=tls-unique,,n=,r=a", "tls-unique"),
            ("n,a=admin,n=,r=a", "authorization identity"),
            ("n,,m=x,n=,r=a", "mandatory"),
            ("n,,r=a", "user name"),
            ("n,,n=", "client nonce"),
            ("n,,n=,r=", "nonce is empty"),
            ("n,,n=,r=a b", "not printable"),
        ] {
            let err = parse_client_first(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }

    #[test]
    fn client_final_and_server_messages() {
        let cf = parse_client_final("c=biws,r=abc,p=cHJvb2Y=").unwrap();
        assert_eq!(
            (cf.channel_binding, cf.nonce, cf.proof),
            ("biws", "abc", "cHJvb2Y=")
        );
        assert_eq!(cf.without_proof, "c=biws,r=abc");
        assert!(parse_client_final("c=biws,r=abc").is_err());
        assert!(parse_client_final("r=abc,c=biws,p=x").is_err());
        let sf = parse_server_first("r=abcdef,s=c2FsdA==,i=4096").unwrap();
        assert_eq!(sf.iterations, 4096);
        assert!(parse_server_first("r=abc,s=c2FsdA==,i=0").is_err());
        assert!(parse_server_first("m=1,r=abc,s=x,i=1").is_err());
        assert_eq!(
            parse_server_final("v=abc").unwrap(),
            ServerFinal::Verifier("abc")
        );
        assert_eq!(
            parse_server_final("e=invalid-proof").unwrap(),
            ServerFinal::Error("invalid-proof")
        );
    }
}
