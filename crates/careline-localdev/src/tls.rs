//! [`ServerTls`]: the PEM files a local server speaks TLS with, for tests of `rediss://` and
//! NATS over TLS.

use std::path::PathBuf;

/// A server's certificate, key and the CA it verifies client certificates with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// The server's PEM certificate (valid for 127.0.0.1).
    pub cert: PathBuf,
    /// Its PEM private key.
    pub key: PathBuf,
    /// The PEM CA client certificates must chain to.
    pub ca: PathBuf,
    /// Whether a client must present a certificate signed by `ca`. The readiness check then
    /// presents the server's own certificate, which must allow client authentication too.
    pub verify_clients: bool,
}
