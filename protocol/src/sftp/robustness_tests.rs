//! Fuzz-style robustness for the SFTP codec: random packets decode or fail, never panic.

#![allow(clippy::unwrap_used)]

use bytes::{BufMut, BytesMut};

use super::{decode_packet, Request, Response};

#[test]
fn random_packets_never_panic() {
    let mut state: u64 = 0x1234_5678_9abc_def1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..100_000u32 {
        let len = (next() % 40) as usize;
        let body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let mut buf = BytesMut::new();
        if i % 2 == 0 {
            buf.put_u32(u32::try_from(len + 1).unwrap());
            buf.put_u8((next() % 24) as u8 + if i % 4 == 0 { 0 } else { 100 });
        }
        buf.put_slice(&body);
        if let Ok(Some(packet)) = decode_packet(&mut buf, 1 << 16) {
            let _ = Request::decode(&packet);
            let _ = Response::decode(&packet);
        }
    }
}
