//! `coffer serve` (a front-end and a vault node in one process) for the password-mode
//! tests, and devices signing in to it through the real binary.

use std::path::{Path, PathBuf};
use std::process::Child;

use super::{coffer, spawn_server};

pub struct Server {
    pub child: Child,
    pub url: String,
    pub tls: String,
    /// The fleet fingerprint the operator's printout shows.
    pub fleet: String,
    pub codes: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `coffer serve` on a free loopback port.
pub fn start_server(data: &Path) -> Server {
    start_server_with(data, &[])
}

/// `coffer serve` with extra arguments.
pub fn start_server_with(data: &Path, extra: &[&str]) -> Server {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--dev-verifier"];
    args.extend_from_slice(extra);
    let (child, v) = spawn_server(&args, data);
    Server {
        url: v["url"].as_str().unwrap().to_string(),
        tls: v["tls_fingerprint"].as_str().unwrap().to_string(),
        fleet: v["fleet_fingerprint"].as_str().unwrap().to_string(),
        codes: PathBuf::from(v["codes_file"].as_str().unwrap()),
        child,
    }
}

/// Registers and verifies `id` on `profile`, reading the code from the server's file.
pub fn sign_in(server: &Server, profile: &Path, id: &str) {
    coffer(profile)
        .args([
            "account",
            "register",
            "--server",
            &server.url,
            "--server-fingerprint",
            &server.tls,
            "--fleet-fingerprint",
            &server.fleet,
            "--id",
            id,
        ])
        .run()
        .ok();
    let code = server.code_for(id);
    coffer(profile)
        .args(["account", "verify", &code])
        .run()
        .ok();
}

impl Server {
    /// The latest code the development verifier wrote for `id`.
    pub fn code_for(&self, id: &str) -> String {
        std::fs::read_to_string(&self.codes)
            .unwrap()
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix(&format!("{id} ")))
            .unwrap_or_else(|| panic!("no code for {id}"))
            .to_string()
    }
}
