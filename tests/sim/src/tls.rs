//! Optional TLS: a generated CA issuing the server certificate (clients can trust the CA PEM)
//! or a self-signed certificate (clients must refuse it).

use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsMode;
use crate::error::SimError;

/// Certificates generated for one server.
pub struct TlsMaterial {
    /// DER chain served to clients (leaf first).
    pub chain: Vec<CertificateDer<'static>>,
    /// DER PKCS#8 key of the leaf.
    pub key: Vec<u8>,
    /// PEM a client would add to its trust store: the CA in `GeneratedCa` mode, the
    /// self-signed leaf itself in `SelfSigned` mode.
    pub trust_pem: String,
}

fn tls_err(e: impl std::fmt::Display) -> SimError {
    SimError::Tls(e.to_string())
}

impl TlsMaterial {
    /// Generates certificates for `localhost` / `127.0.0.1`.
    pub fn generate(mode: TlsMode) -> Result<TlsMaterial, SimError> {
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let leaf_key = KeyPair::generate().map_err(tls_err)?;
        let leaf_params = CertificateParams::new(names).map_err(tls_err)?;
        match mode {
            TlsMode::Off => Err(SimError::Tls("TLS is off".into())),
            TlsMode::SelfSigned => {
                let cert = leaf_params.self_signed(&leaf_key).map_err(tls_err)?;
                Ok(TlsMaterial {
                    trust_pem: cert.pem(),
                    chain: vec![cert.der().clone()],
                    key: leaf_key.serialize_der(),
                })
            }
            TlsMode::GeneratedCa => {
                let ca_key = KeyPair::generate().map_err(tls_err)?;
                let mut ca_params =
                    CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
                ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                ca_params.key_usages = vec![
                    KeyUsagePurpose::KeyCertSign,
                    KeyUsagePurpose::CrlSign,
                    KeyUsagePurpose::DigitalSignature,
                ];
                ca_params
                    .distinguished_name
                    .push(rcgen::DnType::CommonName, "syncbridge-sim test CA");
                let ca = ca_params.self_signed(&ca_key).map_err(tls_err)?;
                let leaf = leaf_params
                    .signed_by(&leaf_key, &ca, &ca_key)
                    .map_err(tls_err)?;
                Ok(TlsMaterial {
                    trust_pem: ca.pem(),
                    chain: vec![leaf.der().clone(), ca.der().clone()],
                    key: leaf_key.serialize_der(),
                })
            }
        }
    }

    fn server_config(&self) -> Result<ServerConfig, SimError> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut cfg = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_err)?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)
            .map_err(tls_err)?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(cfg)
    }
}

/// A TCP listener that completes a TLS handshake before handing connections to axum.
pub struct TlsListener {
    inner: TcpListener,
    acceptor: TlsAcceptor,
}

impl TlsListener {
    /// Wraps a bound listener.
    pub fn new(inner: TcpListener, material: &TlsMaterial) -> Result<Self, SimError> {
        Ok(TlsListener {
            inner,
            acceptor: TlsAcceptor::from(Arc::new(material.server_config()?)),
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.inner.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                continue;
            };
            // A client refusing our certificate aborts the handshake: just wait for the next.
            match tokio::time::timeout(std::time::Duration::from_secs(5), self.acceptor.accept(tcp))
                .await
            {
                Ok(Ok(tls)) => return (tls, addr),
                _ => continue,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}
