//! Encryption in transit: the one TLS setting every service takes, read and checked once, and
//! turned into what each transport needs.
//!
//! [`TlsConfig`] (flattened into [`crate::CommonConfig`]) names PEM files; [`TlsConfig::load`]
//! reads and parses them, failing with the env var, the flag and the file named. The loaded
//! [`Tls`] then configures
//! - the gRPC server ([`crate::GrpcServer::tls`]): TLS with this service's certificate; with a
//!   client CA, every client must present a certificate signed by it (mTLS);
//! - HTTP endpoints ([`Tls::http_acceptor`], [`TlsListener`]): the same certificate, never a
//!   client certificate (kubelet probes and browsers have none);
//! - outgoing connections: gRPC `https://` endpoints ([`Tls::grpc_endpoint`]), `rediss://`
//!   ([`Tls::redis_certificates`]) and NATS ([`crate::nats_client`]) trust the CA file (or the
//!   system roots without one) and present this service's certificate when the server asks.
//!
//! Nothing set means plaintext, the local default of `careline up`; production sets TLS.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

use crate::KitError;

/// Env var for this service's PEM certificate chain.
pub const ENV_TLS_CERT: &str = "CARELINE_TLS_CERT";
/// Env var for the PEM private key of that certificate.
pub const ENV_TLS_KEY: &str = "CARELINE_TLS_KEY";
/// Env var for the PEM CA that client certificates must chain to (turns on mTLS).
pub const ENV_TLS_CLIENT_CA: &str = "CARELINE_TLS_CLIENT_CA";
/// Env var for the PEM CA bundle trusted for outgoing connections.
pub const ENV_TLS_CA: &str = "CARELINE_TLS_CA";

/// How long a client has to complete the TLS handshake before the connection is dropped, so
/// that a peer that connects and stays silent cannot hold a handshake slot.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// ALPN protocols of the HTTP endpoints (HTTP/2 and HTTP/1.1; WebSockets use the latter).
const HTTP_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The TLS files a service is given; all unset means plaintext.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct TlsConfig {
    /// PEM certificate chain this service serves on its gRPC and HTTP ports (and presents as
    /// its client certificate to servers that ask for one); unset: plaintext.
    #[arg(long = "tls-cert", env = ENV_TLS_CERT)]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long = "tls-key", env = ENV_TLS_KEY)]
    pub tls_key: Option<PathBuf>,

    /// PEM CA certificate(s): gRPC clients must present a certificate signed by one (mTLS);
    /// needs --tls-cert.
    #[arg(long = "tls-client-ca", env = ENV_TLS_CLIENT_CA)]
    pub tls_client_ca: Option<PathBuf>,

    /// PEM CA certificate(s) trusted for outgoing TLS (https:// gRPC endpoints, rediss://,
    /// tls:// NATS); unset: the system's roots.
    #[arg(long = "tls-ca", env = ENV_TLS_CA)]
    pub tls_ca: Option<PathBuf>,
}

impl TlsConfig {
    /// Reads and checks every file set; the error names the setting and the file.
    pub fn load(&self) -> Result<Tls, KitError> {
        let identity = match (&self.tls_cert, &self.tls_key) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(KitError::config(
                    ENV_TLS_KEY,
                    "tls-key",
                    "--tls-cert is set without its private key: set both or neither",
                ));
            }
            (None, Some(_)) => {
                return Err(KitError::config(
                    ENV_TLS_CERT,
                    "tls-cert",
                    "--tls-key is set without its certificate: set both or neither",
                ));
            }
            (Some(cert), Some(key)) => Some(TlsIdentity::load(cert, key)?),
        };
        let client_ca = self
            .tls_client_ca
            .as_deref()
            .map(|path| CaFile::load(path, ENV_TLS_CLIENT_CA, "tls-client-ca"))
            .transpose()?;
        if client_ca.is_some() && identity.is_none() {
            return Err(KitError::config(
                ENV_TLS_CLIENT_CA,
                "tls-client-ca",
                "client certificates need TLS: set --tls-cert and --tls-key too",
            ));
        }
        let ca = self
            .tls_ca
            .as_deref()
            .map(|path| CaFile::load(path, ENV_TLS_CA, "tls-ca"))
            .transpose()?;
        Ok(Tls {
            identity,
            client_ca,
            ca,
        })
    }
}

/// A certificate chain and its key, as read from their files, and the HTTP ports' acceptor.
#[derive(Clone)]
struct TlsIdentity {
    cert_path: PathBuf,
    key_path: PathBuf,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    http: TlsAcceptor,
}

impl TlsIdentity {
    fn load(cert_path: &Path, key_path: &Path) -> Result<Self, KitError> {
        let (cert_pem, chain) = read_certificates(cert_path, ENV_TLS_CERT, "tls-cert")?;
        let key_pem = read_file(key_path, ENV_TLS_KEY, "tls-key")?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
            KitError::config(
                ENV_TLS_KEY,
                "tls-key",
                format!(
                    "{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}",
                    key_path.display()
                ),
            )
        })?;
        // rustls checks here that the key belongs to the certificate, as tonic will on the
        // gRPC port: better at start-up than at the first connection.
        let mut http = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| {
                KitError::config(
                    ENV_TLS_KEY,
                    "tls-key",
                    format!(
                        "{} and {} do not make a usable certificate and key: {e}",
                        cert_path.display(),
                        key_path.display()
                    ),
                )
            })?;
        http.alpn_protocols = HTTP_ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Self {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            cert_pem,
            key_pem,
            http: TlsAcceptor::from(Arc::new(http)),
        })
    }

    fn tonic(&self) -> Identity {
        Identity::from_pem(&self.cert_pem, &self.key_pem)
    }
}

/// One or more CA certificates, as read from a file.
#[derive(Clone)]
struct CaFile {
    path: PathBuf,
    pem: Vec<u8>,
}

impl CaFile {
    fn load(path: &Path, env: &str, flag: &str) -> Result<Self, KitError> {
        let (pem, certificates) = read_certificates(path, env, flag)?;
        let mut roots = RootCertStore::empty();
        for certificate in certificates {
            roots.add(certificate).map_err(|e| {
                KitError::config(
                    env,
                    flag,
                    format!(
                        "{} holds a certificate that is not a CA: {e}",
                        path.display()
                    ),
                )
            })?;
        }
        // The client verifier tonic builds from it must accept these roots.
        WebPkiClientVerifier::builder(Arc::new(roots))
            .build()
            .map_err(|e| {
                KitError::config(
                    env,
                    flag,
                    format!("{} cannot verify certificates: {e}", path.display()),
                )
            })?;
        Ok(Self {
            path: path.to_owned(),
            pem,
        })
    }
}

fn read_file(path: &Path, env: &str, flag: &str) -> Result<Vec<u8>, KitError> {
    std::fs::read(path)
        .map_err(|e| KitError::config(env, flag, format!("cannot read {}: {e}", path.display())))
}

fn read_certificates(
    path: &Path,
    env: &str,
    flag: &str,
) -> Result<(Vec<u8>, Vec<CertificateDer<'static>>), KitError> {
    let pem = read_file(path, env, flag)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            KitError::config(
                env,
                flag,
                format!("{} is not a PEM certificate file: {e}", path.display()),
            )
        })?;
    if certificates.is_empty() {
        return Err(KitError::config(
            env,
            flag,
            format!(
                "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                path.display()
            ),
        ));
    }
    Ok((pem, certificates))
}

/// The loaded TLS settings of a service; [`Tls::default`] is plaintext everywhere (outgoing
/// `https://`, `rediss://` and `tls://` connections still work, trusting the system roots).
#[derive(Clone, Default)]
pub struct Tls {
    identity: Option<TlsIdentity>,
    client_ca: Option<CaFile>,
    ca: Option<CaFile>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = |file: Option<&Path>| file.map(|p| p.display().to_string());
        f.debug_struct("Tls")
            .field("cert", &path(self.identity.as_ref().map(|i| &*i.cert_path)))
            .field(
                "client_ca",
                &path(self.client_ca.as_ref().map(|c| &*c.path)),
            )
            .field("ca", &path(self.ca.as_ref().map(|c| &*c.path)))
            .finish()
    }
}

impl Tls {
    /// Whether the servers of this service speak TLS.
    pub fn serves_tls(&self) -> bool {
        self.identity.is_some()
    }

    /// Whether gRPC clients must present a certificate signed by the client CA.
    pub fn requires_client_certificates(&self) -> bool {
        self.client_ca.is_some()
    }

    /// The tonic server TLS settings, when this service serves TLS.
    pub fn grpc_server(&self) -> Option<ServerTlsConfig> {
        let identity = self.identity.as_ref()?;
        let mut config = ServerTlsConfig::new()
            .identity(identity.tonic())
            .timeout(TLS_HANDSHAKE_TIMEOUT);
        if let Some(client_ca) = &self.client_ca {
            config = config.client_ca_root(Certificate::from_pem(&client_ca.pem));
        }
        Some(config)
    }

    /// The acceptor of the HTTP endpoints (HTTP/2 and HTTP/1.1, no client certificate), when
    /// this service serves TLS.
    pub fn http_acceptor(&self) -> Option<TlsAcceptor> {
        self.identity.as_ref().map(|identity| identity.http.clone())
    }

    /// An endpoint for the gRPC server at `url`: for `https://`, TLS trusting the CA file (or
    /// the system roots) and presenting this service's certificate if it has one; `http://`
    /// stays plaintext.
    pub fn grpc_endpoint(&self, url: &str) -> Result<Endpoint, tonic::transport::Error> {
        let endpoint = Endpoint::from_shared(url.to_owned())?;
        if endpoint.uri().scheme_str() != Some("https") {
            return Ok(endpoint);
        }
        let mut config = match &self.ca {
            Some(ca) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca.pem)),
            None => ClientTlsConfig::new().with_native_roots(),
        }
        .timeout(TLS_HANDSHAKE_TIMEOUT);
        if let Some(identity) = &self.identity {
            config = config.identity(identity.tonic());
        }
        endpoint.tls_config(config)
    }

    /// The certificates of a `rediss://` connection, or `None` to trust the system roots
    /// without a client certificate.
    pub fn redis_certificates(&self) -> Option<redis::TlsCertificates> {
        if self.ca.is_none() && self.identity.is_none() {
            return None;
        }
        Some(redis::TlsCertificates {
            client_tls: self
                .identity
                .as_ref()
                .map(|identity| redis::ClientTlsConfig {
                    client_cert: identity.cert_pem.clone(),
                    client_key: identity.key_pem.clone(),
                }),
            root_cert: self.ca.as_ref().map(|ca| ca.pem.clone()),
        })
    }

    /// Adds the CA file and this service's certificate to NATS connect options.
    pub fn nats_options(
        &self,
        mut options: async_nats::ConnectOptions,
    ) -> async_nats::ConnectOptions {
        if let Some(ca) = &self.ca {
            options = options.add_root_certificates(ca.path.clone());
        }
        if let Some(identity) = &self.identity {
            options = options
                .add_client_certificate(identity.cert_path.clone(), identity.key_path.clone());
        }
        options
    }
}

/// An HTTP listener that speaks TLS: TCP connections are accepted at once and their
/// handshakes run concurrently (each within [`TLS_HANDSHAKE_TIMEOUT`]), so one slow client
/// holds up nobody. Serve it with `axum::serve` like a `TcpListener`.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, std::net::SocketAddr)>>,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("tcp", &self.tcp)
            .finish_non_exhaustive()
    }
}

impl TlsListener {
    /// TLS on `tcp` with `acceptor` (from [`Tls::http_acceptor`]).
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> Self {
        Self {
            tcp,
            acceptor,
            handshakes: JoinSet::new(),
        }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok((stream, addr)) => {
                        let acceptor = self.acceptor.clone();
                        self.handshakes.spawn(async move {
                            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                                Ok(Ok(tls)) => Some((tls, addr)),
                                Ok(Err(error)) => {
                                    tracing::debug!(%error, "TLS handshake failed");
                                    None
                                }
                                Err(_) => {
                                    tracing::debug!("TLS handshake timed out");
                                    None
                                }
                            }
                        });
                    }
                    // Out of file descriptors and the like: axum's own listener waits too.
                    Err(error) => {
                        tracing::warn!(%error, "accepting an HTTP connection failed");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                },
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(connection)) = done {
                        return connection;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// How long to wait after a failed `accept` (e.g. too many open files) before the next.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` until `shutdown`, over TLS when `tls` has a certificate
/// (the future owns what it needs, so it can be spawned).
pub fn serve_http(
    listener: TcpListener,
    router: axum::Router,
    tls: &Tls,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> impl std::future::Future<Output = std::io::Result<()>> + Send + 'static {
    let acceptor = tls.http_acceptor();
    async move {
        match acceptor {
            Some(acceptor) => {
                axum::serve(TlsListener::new(listener, acceptor), router)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
            None => {
                axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        }
    }
}
