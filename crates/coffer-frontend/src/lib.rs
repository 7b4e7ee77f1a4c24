//! The Coffer front-end (the ChatD role): accounts and their verification, authentication
//! of clients, and (next) the HTTPS API that relays vault messages it cannot read.

pub mod accounts;
