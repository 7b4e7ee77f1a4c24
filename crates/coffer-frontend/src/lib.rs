//! The Coffer front-end (the ChatD role): accounts and their verification, authentication
//! of clients, rate limits, and the HTTPS API that relays vault messages it cannot read.

pub mod account_id;
pub mod accounts;
mod api;
pub mod backoff;
pub mod code;
pub mod code_key;
pub mod credential;
pub mod limits;
mod private_file;
pub mod relay;
pub mod server;
mod sqlite_file;
pub mod verifier;
