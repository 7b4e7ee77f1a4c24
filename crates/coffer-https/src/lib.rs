//! The HTTPS server shell that Coffer's servers (the front-end and the vault node) share.
//! Work in progress: see the crate description.
