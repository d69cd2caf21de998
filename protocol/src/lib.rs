//! Sans-IO codecs for the protocols the bastion inspects. `postgres` holds the PostgreSQL wire
//! protocol: frame splitting (`postgres::decode_frame`, `postgres::decode_startup`), one typed view
//! per frontend and backend message (`postgres::frontend`, `postgres::backend`), the tag and
//! SQLSTATE tables, and SCRAM-SHA-256 server and client state machines (`postgres::scram`).
//! `sftp` holds the SFTP v3 packet codec used to decide file operations inside SSH sessions.
//! `terminal` holds the line tracker that reads an interactive shell's command line from a vt100
//! screen.
//! Nothing here touches sockets, files or clocks: callers feed bytes in and write bytes out.
//!
//! ```
//! use bytes::BytesMut;
//! use protocol::postgres::{decode_frame, frontend::{FrontendMessage, Query}};
//!
//! let mut wire = BytesMut::new();
//! Query::new("select 1").encode(&mut wire);
//! let frame = decode_frame(&mut wire, 1 << 20).unwrap().unwrap();
//! match FrontendMessage::decode(&frame).unwrap() {
//!     FrontendMessage::Query(q) => assert_eq!(q.query, "select 1"),
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod postgres;
pub mod sftp;
pub mod terminal;
