//! TLS on both ports (rustls, TLS 1.3 only, the `ring` provider).
//!
//! **Identities.** One cluster CA signs every certificate. A server's
//! certificate carries two DNS names: [`server_name`]`(id)`
//! (`paxos-server-<id>`), which its peers check, and [`CLUSTER_NAME`]
//! (`paxos-chatroom`), which clients check: any server of the cluster may
//! answer a client, so clients only need to know that they reach *a* server of
//! this cluster. A client certificate (optional) names `paxos-client-<name>`
//! and is good for client authentication only.
//!
//! **Peer port: mutual TLS.** A server dialling peer `j` checks that the
//! listener's certificate chains to the CA and names `paxos-server-<j>`; the
//! listener demands a client certificate that chains to the CA and, once the
//! caller's hello says "I am server `i`", that it names `paxos-server-<i>`
//! ([`cert_names_server`]). So the `from` of every peer frame the driver hands
//! the core is proven by a key only server `i` holds.
//!
//! **Client port: server authentication.** Clients check the server's
//! certificate; the server asks for a client certificate and checks any that
//! is offered (or, with [`ClientCerts::Required`], refuses clients without
//! one). Client identity is not used for anything else: sessions are still
//! named by the ids the clients choose.
//!
//! [`DevPki`] makes a development CA and certificates (rcgen); `chatroom-certs`
//! writes them to a directory laid out as [`TlsDir`] reads it.

use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The DNS name every server certificate carries and clients check.
pub const CLUSTER_NAME: &str = "paxos-chatroom";

/// First byte of every TLS connection (a handshake record). A plain chat or
/// peer frame starts with the high byte of its length, which is 0 for any
/// frame under 16 MiB, so the two are told apart by one peeked byte.
pub const TLS_HANDSHAKE_BYTE: u8 = 0x16;

/// The DNS name that binds a certificate to server `id`.
pub fn server_name(id: u32) -> String {
    format!("paxos-server-{id}")
}

/// The DNS name of client certificate `name`.
pub fn client_name(name: &str) -> String {
    format!("paxos-client-{name}")
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file holds no PEM certificate.
    #[error("{path}: no PEM certificate in it")]
    NoCert {
        /// The file.
        path: PathBuf,
    },
    /// A file holds no PEM private key.
    #[error("{path}: no PEM private key in it (PKCS#8, PKCS#1 or SEC1)")]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// A file is not PEM.
    #[error("{path}: not PEM: {message}")]
    BadPem {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// The CA file holds a certificate that cannot be a trust anchor.
    #[error("{path}: not a usable CA certificate: {message}")]
    BadCa {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// This server's certificate does not name it.
    #[error("{path}: the certificate does not name {name}, so it is not server {id}'s (chatroom-certs issues one per id)")]
    WrongName {
        /// The certificate file.
        path: PathBuf,
        /// The id it should name.
        id: u32,
        /// The name looked for.
        name: String,
    },
    /// This server's certificate does not chain to the CA it was given.
    #[error("{path} is not signed by the CA in {ca} ({message}): its peers would refuse it")]
    NotFromCa {
        /// The certificate file.
        path: PathBuf,
        /// The CA file.
        ca: PathBuf,
        /// What the check said.
        message: String,
    },
    /// rustls refused the keys or settings.
    #[error("TLS set-up: {0}")]
    Rustls(#[from] rustls::Error),
    /// The certificate verifier could not be built.
    #[error("TLS set-up: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// rcgen could not make a certificate.
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// PEM text of a CA, a certificate chain and its private key.
#[derive(Clone)]
pub struct Identity {
    /// The cluster CA certificate(s).
    pub ca: Vec<CertificateDer<'static>>,
    /// This end's certificate, then any intermediates.
    pub chain: Vec<CertificateDer<'static>>,
    /// Its private key.
    pub key: Arc<PrivateKeyDer<'static>>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("ca", &self.ca.len())
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Every certificate in PEM text `pem` (from `path`, for errors).
pub fn certs_from_pem(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCert {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The first private key in PEM text `pem` (from `path`, for errors).
pub fn key_from_pem(pem: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_path_buf(),
        },
        e => TlsError::BadPem {
            path: path.to_path_buf(),
            message: e.to_string(),
        },
    })
}

/// Reads the CA certificates of `ca_path`.
pub fn load_ca(ca_path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    certs_from_pem(&read(ca_path)?, ca_path)
}

fn roots(ca: &[CertificateDer<'static>], path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in ca {
        store.add(cert.clone()).map_err(|e| TlsError::BadCa {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    }
    Ok(Arc::new(store))
}

/// Whether certificate `cert` names server `id` (`paxos-server-<id>`). Only
/// meaningful for a certificate that already chains to the cluster CA.
pub fn cert_names_server(cert: &CertificateDer<'_>, id: u32) -> bool {
    let Ok(name) = ServerName::try_from(server_name(id)) else {
        return false;
    };
    ParsedCertificate::try_from(cert).is_ok_and(|parsed| verify_server_name(&parsed, &name).is_ok())
}

/// The files of a TLS directory, as `chatroom-certs` writes it.
#[derive(Clone, Debug)]
pub struct TlsDir {
    /// `ca.pem`: the cluster CA certificate.
    pub ca: PathBuf,
    /// `server-<id>.pem`: this server's certificate (then any intermediates).
    pub cert: PathBuf,
    /// `server-<id>.key`: its private key.
    pub key: PathBuf,
}

impl TlsDir {
    /// The files of server `id` in `dir`.
    pub fn new(dir: &Path, id: u32) -> TlsDir {
        TlsDir {
            ca: dir.join("ca.pem"),
            cert: dir.join(format!("server-{id}.pem")),
            key: dir.join(format!("server-{id}.key")),
        }
    }

    /// Reads the three files.
    pub fn load(&self) -> Result<Identity, TlsError> {
        Ok(Identity {
            ca: load_ca(&self.ca)?,
            chain: certs_from_pem(&read(&self.cert)?, &self.cert)?,
            key: Arc::new(key_from_pem(&read(&self.key)?, &self.key)?),
        })
    }
}

/// What the client port asks of clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ClientCerts {
    /// Ask for a certificate, check one if offered, accept clients without.
    #[default]
    Optional,
    /// Refuse clients without a certificate from the cluster CA.
    Required,
}

/// A server's TLS: mutual TLS on the peer port both ways, server
/// authentication (and optional client certificates) on the client port.
#[derive(Clone)]
pub struct ServerTls {
    peer_acceptor: TlsAcceptor,
    peer_connector: TlsConnector,
    client_acceptor: TlsAcceptor,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerTls")
    }
}

impl ServerTls {
    /// Server `id`'s TLS from `DIR/ca.pem`, `DIR/server-<id>.pem` and
    /// `DIR/server-<id>.key`. Refuses a certificate that does not name `id`.
    pub fn load(dir: &Path, id: u32, client_certs: ClientCerts) -> Result<ServerTls, TlsError> {
        let files = TlsDir::new(dir, id);
        let identity = files.load()?;
        ServerTls::new(&identity, id, client_certs, &files.ca, &files.cert)
    }

    /// Server `id`'s TLS from an identity in memory (`ca_path` and
    /// `cert_path` only name things in errors).
    pub fn new(
        identity: &Identity,
        id: u32,
        client_certs: ClientCerts,
        ca_path: &Path,
        cert_path: &Path,
    ) -> Result<ServerTls, TlsError> {
        let leaf = identity.chain.first().ok_or_else(|| TlsError::NoCert {
            path: cert_path.to_path_buf(),
        })?;
        if !cert_names_server(leaf, id) {
            return Err(TlsError::WrongName {
                path: cert_path.to_path_buf(),
                id,
                name: server_name(id),
            });
        }
        let roots = roots(&identity.ca, ca_path)?;
        // Our own certificate must pass the check our peers will make.
        let parsed = ParsedCertificate::try_from(leaf).map_err(|e| TlsError::BadPem {
            path: cert_path.to_path_buf(),
            message: e.to_string(),
        })?;
        verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &roots,
            &identity.chain[1..],
            UnixTime::now(),
            provider().signature_verification_algorithms.all,
        )
        .map_err(|e| TlsError::NotFromCa {
            path: cert_path.to_path_buf(),
            ca: ca_path.to_path_buf(),
            message: e.to_string(),
        })?;
        let key = || identity.key.clone_key();
        let tls13 = &[&rustls::version::TLS13];

        // Peer links are few and long-lived: every one gets a full handshake
        // (no session resumption), so every connection checks the
        // certificate as it is now, expiry included.
        let peers =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider()).build()?;
        let mut peer_server = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(tls13)?
            .with_client_cert_verifier(peers)
            .with_single_cert(identity.chain.clone(), key())?;
        peer_server.send_tls13_tickets = 0;

        let clients = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider());
        let clients = match client_certs {
            ClientCerts::Optional => clients.allow_unauthenticated().build()?,
            ClientCerts::Required => clients.build()?,
        };
        let client_server = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(tls13)?
            .with_client_cert_verifier(clients)
            .with_single_cert(identity.chain.clone(), key())?;

        let mut peer_client = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(tls13)?
            .with_root_certificates(roots)
            .with_client_auth_cert(identity.chain.clone(), key())?;
        peer_client.resumption = rustls::client::Resumption::disabled();

        Ok(ServerTls {
            peer_acceptor: TlsAcceptor::from(Arc::new(peer_server)),
            peer_connector: TlsConnector::from(Arc::new(peer_client)),
            client_acceptor: TlsAcceptor::from(Arc::new(client_server)),
        })
    }

    /// Accepts a peer connection: the caller must show a certificate from
    /// the cluster CA (whose name the caller checks against its hello).
    pub async fn accept_peer(&self, tcp: TcpStream) -> io::Result<Stream> {
        let s = self.peer_acceptor.accept(tcp).await?;
        Ok(Stream::Tls(Box::new(s.into())))
    }

    /// Dials peer `id`: its certificate must come from the cluster CA and
    /// name `paxos-server-<id>`; ours goes with the handshake.
    pub async fn connect_peer(&self, tcp: TcpStream, id: u32) -> io::Result<Stream> {
        let name = ServerName::try_from(server_name(id))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let s = self.peer_connector.connect(name, tcp).await?;
        Ok(Stream::Tls(Box::new(s.into())))
    }

    /// Accepts a client connection.
    pub async fn accept_client(&self, tcp: TcpStream) -> io::Result<Stream> {
        let s = self.client_acceptor.accept(tcp).await?;
        Ok(Stream::Tls(Box::new(s.into())))
    }
}

/// A client's TLS: checks that the server's certificate chains to the
/// cluster CA and names [`CLUSTER_NAME`]; offers a client certificate if given one.
#[derive(Clone)]
pub struct ClientTls {
    connector: TlsConnector,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientTls")
    }
}

impl ClientTls {
    /// From the CA file, and optionally a client certificate and key file.
    pub fn load(ca_path: &Path, identity: Option<(&Path, &Path)>) -> Result<ClientTls, TlsError> {
        let ca = load_ca(ca_path)?;
        let identity = match identity {
            None => None,
            Some((cert, key)) => Some((
                certs_from_pem(&read(cert)?, cert)?,
                key_from_pem(&read(key)?, key)?,
            )),
        };
        ClientTls::new(&ca, identity, ca_path)
    }

    /// From certificates in memory (`ca_path` only names the CA in errors).
    pub fn new(
        ca: &[CertificateDer<'static>],
        identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
        ca_path: &Path,
    ) -> Result<ClientTls, TlsError> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots(ca, ca_path)?);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        };
        Ok(ClientTls {
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    /// Runs the handshake on a connected socket.
    pub async fn connect(&self, tcp: TcpStream) -> io::Result<Stream> {
        let name = ServerName::try_from(CLUSTER_NAME)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let s = self.connector.connect(name, tcp).await?;
        Ok(Stream::Tls(Box::new(s.into())))
    }
}

/// A connection, with TLS or (`--insecure`) without.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP, either end.
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

impl Stream {
    /// The certificate the other end showed, if any (TLS only).
    pub fn peer_certificate(&self) -> Option<&CertificateDer<'static>> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(s) => s.get_ref().1.peer_certificates()?.first(),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}

/// A development CA that issues server and client certificates (rcgen,
/// ECDSA P-256, valid from last year for ten years). Its key lives only in
/// memory: issue everything a cluster needs in one go.
pub struct DevPki {
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl fmt::Debug for DevPki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DevPki")
    }
}

/// A certificate and its key, both as PEM text.
#[derive(Clone)]
pub struct IssuedPem {
    /// The certificate.
    pub cert: String,
    /// Its private key.
    pub key: String,
}

impl fmt::Debug for IssuedPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IssuedPem")
    }
}

fn validity(params: &mut rcgen::CertificateParams) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let year = 1970 + (secs / 31_556_952) as i32;
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
}

impl DevPki {
    /// A fresh CA named `common_name`.
    pub fn new(common_name: &str) -> Result<DevPki, TlsError> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params);
        let key = rcgen::KeyPair::generate()?;
        Ok(DevPki {
            ca: rcgen::CertifiedIssuer::self_signed(params, key)?,
        })
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    fn issue(
        &self,
        names: Vec<String>,
        eku: Vec<rcgen::ExtendedKeyUsagePurpose>,
    ) -> Result<IssuedPem, TlsError> {
        let common = names.first().cloned().unwrap_or_default();
        let mut params = rcgen::CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common);
        params.extended_key_usages = eku;
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        validity(&mut params);
        let key = rcgen::KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.ca)?;
        Ok(IssuedPem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }

    /// Server `id`'s certificate: names `paxos-server-<id>` and
    /// `paxos-chatroom`, for both TLS server and client use (peer links go
    /// both ways).
    pub fn server(&self, id: u32) -> Result<IssuedPem, TlsError> {
        self.server_named(&server_name(id))
    }

    /// A server certificate that names `name` (and `paxos-chatroom`); tests
    /// use it for a peer whose certificate does not name the id it claims.
    pub fn server_named(&self, name: &str) -> Result<IssuedPem, TlsError> {
        use rcgen::ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
        self.issue(
            vec![name.to_string(), CLUSTER_NAME.into()],
            vec![ServerAuth, ClientAuth],
        )
    }

    /// A client certificate naming `paxos-client-<name>`, good only for
    /// client authentication.
    pub fn client(&self, name: &str) -> Result<IssuedPem, TlsError> {
        self.issue(
            vec![client_name(name)],
            vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth],
        )
    }

    /// Writes `ca.pem` to `dir` (created if needed).
    pub fn write_ca(&self, dir: &Path) -> Result<(), TlsError> {
        create_dir(dir)?;
        write_file(&dir.join("ca.pem"), &self.ca_pem(), false)
    }

    /// Writes `server-<id>.pem` and `server-<id>.key` to `dir`.
    pub fn write_server(&self, dir: &Path, id: u32) -> Result<(), TlsError> {
        let issued = self.server(id)?;
        create_dir(dir)?;
        write_file(&dir.join(format!("server-{id}.pem")), &issued.cert, false)?;
        write_file(&dir.join(format!("server-{id}.key")), &issued.key, true)
    }

    /// Writes `client-<name>.pem` and `client-<name>.key` to `dir`.
    pub fn write_client(&self, dir: &Path, name: &str) -> Result<(), TlsError> {
        let issued = self.client(name)?;
        create_dir(dir)?;
        write_file(&dir.join(format!("client-{name}.pem")), &issued.cert, false)?;
        write_file(&dir.join(format!("client-{name}.key")), &issued.key, true)
    }

    /// Writes the CA and the certificates of servers `0..servers` to `dir`:
    /// what `--tls-dir` expects.
    pub fn write_cluster(&self, dir: &Path, servers: u32) -> Result<(), TlsError> {
        self.write_ca(dir)?;
        for id in 0..servers {
            self.write_server(dir, id)?;
        }
        Ok(())
    }
}

fn create_dir(dir: &Path) -> Result<(), TlsError> {
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_path_buf(),
        source,
    })
}

/// Writes `text` to `path`; a secret is readable by its owner only.
fn write_file(path: &Path, text: &str, secret: bool) -> Result<(), TlsError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let _ = secret;
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|source| TlsError::Write {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(pem: &str) -> CertificateDer<'static> {
        certs_from_pem(pem.as_bytes(), Path::new("test")).unwrap()[0].clone()
    }

    #[test]
    fn a_server_certificate_names_its_id_and_no_other() {
        let pki = DevPki::new("test CA").unwrap();
        let cert = der(&pki.server(2).unwrap().cert);
        assert!(cert_names_server(&cert, 2));
        assert!(!cert_names_server(&cert, 1));
        assert!(!cert_names_server(&cert, 20));
        let client = der(&pki.client("alice").unwrap().cert);
        assert!(!cert_names_server(&client, 0));
    }

    #[test]
    fn server_tls_refuses_a_certificate_of_another_id() {
        let pki = DevPki::new("test CA").unwrap();
        let issued = pki.server(1).unwrap();
        let identity = Identity {
            ca: vec![der(&pki.ca_pem())],
            chain: vec![der(&issued.cert)],
            key: Arc::new(key_from_pem(issued.key.as_bytes(), Path::new("k")).unwrap()),
        };
        let p = Path::new("x");
        assert!(ServerTls::new(&identity, 1, ClientCerts::Optional, p, p).is_ok());
        let err = ServerTls::new(&identity, 0, ClientCerts::Optional, p, p).unwrap_err();
        assert!(err.to_string().contains("paxos-server-0"), "{err}");
        let other = DevPki::new("another CA").unwrap();
        let foreign = Identity {
            ca: vec![der(&other.ca_pem())],
            ..identity
        };
        let err = ServerTls::new(&foreign, 1, ClientCerts::Optional, p, p).unwrap_err();
        assert!(err.to_string().contains("not signed by the CA"), "{err}");
    }

    #[test]
    fn unreadable_and_empty_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = ServerTls::load(dir.path(), 0, ClientCerts::Optional).unwrap_err();
        assert!(err.to_string().contains("ca.pem"), "{err}");
        std::fs::write(dir.path().join("ca.pem"), "not pem at all").unwrap();
        let err = ServerTls::load(dir.path(), 0, ClientCerts::Optional).unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
        let pki = DevPki::new("test CA").unwrap();
        pki.write_cluster(dir.path(), 1).unwrap();
        std::fs::write(dir.path().join("server-0.key"), pki.ca_pem()).unwrap();
        let err = ServerTls::load(dir.path(), 0, ClientCerts::Optional).unwrap_err();
        assert!(err.to_string().contains("no PEM private key"), "{err}");
    }
}
