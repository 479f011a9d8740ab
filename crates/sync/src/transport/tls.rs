//! TLS 1.3 with raw public keys (RFC 7250) both ways: the server accepts only clients whose
//! key is in its trust list, the client only the server key it was told to expect. rustls with
//! the ring provider; no certificate authorities, no names.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    verify_tls13_signature_with_raw_key, CryptoProvider, WebPkiSupportedAlgorithms,
};
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use super::identity::{node_id_of, Identity, TrustList};
use super::SyncError;

/// The ALPN protocol of the sync transport.
pub const ALPN: &[u8] = b"sqlite-vector-sync/1";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

/// The parts both verifiers share: TLS 1.3 only, signatures checked against the raw public
/// key, raw public keys required.
macro_rules! raw_key_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _cert: &CertificateDer<'_>,
            _dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::General("TLS 1.2 is not offered".into()))
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature_with_raw_key(
                message,
                &SubjectPublicKeyInfoDer::from(cert.as_ref()),
                dss,
                &self.algs,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algs.supported_schemes()
        }

        fn requires_raw_public_keys(&self) -> bool {
            true
        }
    };
}

/// Accepts a client whose raw public key is in the root's trust list, read at each handshake
/// (a peer trusted while the server runs is accepted at once).
#[derive(Debug)]
struct TrustedClients {
    root: PathBuf,
    algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for TrustedClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let id = node_id_of(end_entity.as_ref());
        let trusted = TrustList::load(&self.root)
            .map_err(|e| rustls::Error::General(format!("trust list: {e}")))?;
        if trusted.peer(&id).is_some() {
            Ok(ClientCertVerified::assertion())
        } else {
            tracing::warn!(peer = %id, "refused a peer that is not in the trust list");
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    raw_key_signatures!();
}

/// Accepts only the server whose raw public key has the node id `expected`.
#[derive(Debug)]
struct PinnedServer {
    expected: String,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if node_id_of(end_entity.as_ref()) == self.expected {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    raw_key_signatures!();
}

fn tls_error(e: impl std::fmt::Display) -> SyncError {
    SyncError::Tls(e.to_string())
}

/// QUIC transport settings of both sides: 64 concurrent shard streams, 30 s idle timeout.
fn transport() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_bidi_streams(64u32.into());
    t.max_idle_timeout(Some(
        std::time::Duration::from_secs(30)
            .try_into()
            .expect("30 s fits"),
    ));
    t
}

/// The QUIC server configuration of a root: its key, clients from its trust list.
pub(super) fn server_config(
    identity: &Identity,
    root: PathBuf,
) -> Result<quinn::ServerConfig, SyncError> {
    let verifier = Arc::new(TrustedClients {
        root,
        algs: algorithms(),
    });
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(
            rustls::server::AlwaysResolvesServerRawPublicKeys::new(identity.certified_key()?),
        ));
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(tls_error)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport()));
    Ok(config)
}

/// The QUIC client configuration for connecting to the node `peer_id` with `identity`.
pub(super) fn client_config(
    identity: &Identity,
    peer_id: &str,
) -> Result<quinn::ClientConfig, SyncError> {
    let verifier = Arc::new(PinnedServer {
        expected: peer_id.to_string(),
        algs: algorithms(),
    });
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(Arc::new(
            rustls::client::AlwaysResolvesClientRawPublicKeys::new(identity.certified_key()?),
        ));
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(tls_error)?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport()));
    Ok(config)
}
