//! [`TestPki`]: a certificate authority generated at test time (rcgen), with a server
//! certificate for `localhost` / `127.0.0.1` and a client certificate, written as PEM files the
//! way a service is given them (`CARELINE_TLS_CERT`, `CARELINE_TLS_KEY`, `CARELINE_TLS_CA`, ...).
//!
//! Two `TestPki`s share nothing: a client trusting one's CA rejects the other's server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use careline_kit::TlsConfig;
use careline_localdev::ServerTls;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The names the server certificate is valid for.
pub const SERVER_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// A throw-away CA and the PEM files of what it signed; deleted on drop.
pub struct TestPki {
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki")
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl TestPki {
    /// A new CA (named `name`) with a server and a client certificate, written to a temp dir.
    pub fn generate(name: &str) -> TestPki {
        let dir = tempfile::Builder::new()
            .prefix("careline-pki-")
            .tempdir()
            .expect("temp dir for test certificates");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);
        let write = |file: &str, pem: String| {
            std::fs::write(dir.path().join(file), pem).expect("writing a test certificate");
        };
        write("ca.pem", ca_cert.pem());
        // A service's certificate also authenticates it as a client (to the router, Redis,
        // NATS), as in production; the client one is a CLI's or an integration's.
        let server_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let client_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        for (stem, usages) in [("server", server_usages), ("client", client_usages)] {
            let key = KeyPair::generate().expect("leaf key");
            let mut params =
                CertificateParams::new(SERVER_NAMES.map(String::from).to_vec()).expect("params");
            params
                .distinguished_name
                .push(DnType::CommonName, format!("{name} test {stem}"));
            params.extended_key_usages = usages;
            let cert = params.signed_by(&key, &issuer).expect("leaf certificate");
            write(&format!("{stem}.pem"), cert.pem());
            write(&format!("{stem}-key.pem"), key.serialize_pem());
        }
        TestPki { dir }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate.
    pub fn ca(&self) -> PathBuf {
        self.file("ca.pem")
    }

    /// The server certificate (for `localhost` and `127.0.0.1`).
    pub fn server_cert(&self) -> PathBuf {
        self.file("server.pem")
    }

    /// The server certificate's key.
    pub fn server_key(&self) -> PathBuf {
        self.file("server-key.pem")
    }

    /// The client certificate.
    pub fn client_cert(&self) -> PathBuf {
        self.file("client.pem")
    }

    /// The client certificate's key.
    pub fn client_key(&self) -> PathBuf {
        self.file("client-key.pem")
    }

    /// The files a local Redis or NATS server speaks TLS with; with `verify_clients`, clients
    /// must present a certificate this CA signed.
    pub fn local_server(&self, verify_clients: bool) -> ServerTls {
        ServerTls {
            cert: self.server_cert(),
            key: self.server_key(),
            ca: self.ca(),
            verify_clients,
        }
    }

    /// `GET path` over HTTPS from the server at `addr` (as `localhost`, trusting this CA, no
    /// client certificate); the whole HTTP/1.1 response.
    pub async fn https_get(&self, addr: SocketAddr, path: &str) -> std::io::Result<String> {
        let mut roots = rustls::RootCertStore::empty();
        let ca = std::fs::read(self.ca())?;
        for cert in CertificateDer::pem_slice_iter(&ca) {
            roots
                .add(cert.map_err(std::io::Error::other)?)
                .map_err(std::io::Error::other)?;
        }
        let mut config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
        let mut stream = TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await?;
        let mut response = Vec::new();
        // A server closing without close_notify still sent a whole response.
        match stream.read_to_end(&mut response).await {
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {}
            Err(error) => return Err(error),
        }
        Ok(String::from_utf8_lossy(&response).into_owned())
    }

    /// A service's TLS settings: the server certificate, and mTLS with this CA when
    /// `client_certificates` is set.
    pub fn server_config(&self, client_certificates: bool) -> TlsConfig {
        TlsConfig {
            tls_cert: Some(self.server_cert()),
            tls_key: Some(self.server_key()),
            tls_client_ca: client_certificates.then(|| self.ca()),
            tls_ca: Some(self.ca()),
        }
    }

    /// A client's TLS settings: trusts this CA, and presents the client certificate when
    /// `client_certificate` is set.
    pub fn client_config(&self, client_certificate: bool) -> TlsConfig {
        TlsConfig {
            tls_cert: client_certificate.then(|| self.client_cert()),
            tls_key: client_certificate.then(|| self.client_key()),
            tls_client_ca: None,
            tls_ca: Some(self.ca()),
        }
    }
}
