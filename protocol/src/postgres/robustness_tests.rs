//! Fuzz-style robustness: deterministic pseudo-random bytes through every decoder must produce
//! values or errors, never a panic, and never an unbounded wait or allocation.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use bytes::{BufMut, BytesMut};

use super::backend::*;
use super::frontend::*;
use super::{decode_frame, decode_startup, Frame};

/// xorshift64*: small, deterministic, good enough to spray bytes.
struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = (self.next() as usize) % (max + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn decode_every_way(frame: &Frame) {
    let _ = FrontendMessage::decode(frame);
    let _ = BackendMessage::decode(frame);
    let _ = PasswordMessage::decode(frame);
    let _ = SaslInitialResponse::decode(frame);
    let _ = SaslResponse::decode(frame);
    // Typed decoders check the tag first; retag the frame so each one parses the body.
    for tag in b"QPBEDCSHdcfFXpRKZNTtGWAvsIn123" {
        let mut raw = frame.raw.to_vec();
        raw[0] = *tag;
        let f = Frame {
            tag: *tag,
            raw: raw.into(),
        };
        let _ = FrontendMessage::decode(&f);
        let _ = BackendMessage::decode(&f);
        let _ = PasswordMessage::decode(&f);
        let _ = SaslInitialResponse::decode(&f);
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Prng(0x9e37_79b9_7f4a_7c15);
    for i in 0..100_000 {
        let body = rng.bytes(48);
        // Half the inputs get a plausible header so the body decoders are reached.
        let mut buf = BytesMut::new();
        if i % 2 == 0 {
            buf.put_u8(body.first().copied().unwrap_or(b'Q'));
            buf.put_u32(u32::try_from(body.len() + 4).unwrap());
            buf.put_slice(&body);
        } else {
            buf.put_slice(&body);
        }
        let mut startup = buf.clone();
        let _ = decode_startup(&mut startup, 10_000);
        if let Ok(Some(frame)) = decode_frame(&mut buf, 1 << 16) {
            if i % 8 == 0 {
                decode_every_way(&frame);
            } else {
                let _ = FrontendMessage::decode(&frame);
                let _ = BackendMessage::decode(&frame);
            }
        }
    }
}

#[test]
fn random_startup_packets_never_panic() {
    let mut rng = Prng(42);
    for i in 0..20_000 {
        let body = rng.bytes(64);
        let mut buf = BytesMut::new();
        buf.put_u32(u32::try_from(body.len() + 8).unwrap());
        buf.put_u32(match i % 4 {
            0 => 3 << 16,
            1 => 80_877_102,
            2 => 80_877_103,
            _ => rng.next() as u32,
        });
        buf.put_slice(&body);
        let _ = decode_startup(&mut buf, 10_000);
    }
}

#[test]
fn garbage_before_startup_is_an_error_not_a_wait() {
    // An HTTP request sent to the Postgres port: "GET " reads as a 1.1 GB length.
    let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\n\r\n"[..]);
    let err = decode_startup(&mut buf, 10_000).unwrap_err();
    assert!(
        err.to_string().contains("outside the accepted range"),
        "{err}"
    );
    // A TLS ClientHello sent without SSLRequest.
    let mut buf = BytesMut::from(&b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..]);
    assert!(decode_startup(&mut buf, 10_000).is_err());
}

#[test]
fn length_two_to_the_31_is_rejected_for_every_tag() {
    for tag in 0..=255u8 {
        let mut buf = BytesMut::new();
        buf.put_u8(tag);
        buf.put_u32(1 << 31);
        assert!(decode_frame(&mut buf, 1 << 30).is_err());
    }
}
