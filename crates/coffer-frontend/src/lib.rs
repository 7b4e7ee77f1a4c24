//! The Coffer front-end (the ChatD role): accounts and their verification, authentication
//! of clients, rate limits, and the HTTPS API that relays vault messages it cannot read.

pub mod account_id;
pub mod accounts;
mod limits;
pub mod local;
pub mod server;
pub mod verifier;
