//! A root's node identity (its key pair) and its list of trusted peers.
//!
//! Files under `<root>/sync/`: `node.key` (the private key, PKCS#8 PEM, mode 0600, created on
//! first use) and `trust.json` (the trusted peers and their grants). A node id is the SHA-256
//! of the node's public key (its X.509 SubjectPublicKeyInfo DER) in 64 hex digits; peers
//! authenticate with these raw public keys (RFC 7250) in mutual TLS 1.3.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{KeyPair, PublicKeyData};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};

use super::SyncError;
use crate::proto::Grant;

/// The length of a node id in hex digits.
pub const NODE_ID_HEX: usize = 64;

/// The node id of a public key: SHA-256 of its SubjectPublicKeyInfo DER, 64 lower-case hex
/// digits.
pub fn node_id_of(spki_der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, spki_der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks that `id` is a node id (64 hex digits); returns it in lower case.
///
/// # Errors
/// [`SyncError::InvalidArgument`] otherwise.
pub fn parse_node_id(id: &str) -> Result<String, SyncError> {
    if id.len() == NODE_ID_HEX && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id.to_ascii_lowercase())
    } else {
        Err(SyncError::InvalidArgument(format!(
            "a node id is {NODE_ID_HEX} hex digits (`sqlite-vector sync id` prints it), got {id:?}"
        )))
    }
}

/// A node's key pair and id.
pub struct Identity {
    key: KeyPair,
    id: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("id", &self.id).finish()
    }
}

fn sync_dir(root: &Path) -> PathBuf {
    root.join("sync")
}

impl Identity {
    /// The identity of the root at `root`, created on first use (`<root>/sync/node.key`,
    /// written with mode 0600 before any key byte goes in).
    ///
    /// # Errors
    /// [`SyncError::Io`]; [`SyncError::Identity`] for a key file that is not a key this build
    /// can use (it is never overwritten).
    pub fn load_or_create(root: &Path) -> Result<Identity, SyncError> {
        let path = sync_dir(root).join("node.key");
        match std::fs::read_to_string(&path) {
            Ok(pem) => {
                let key = KeyPair::from_pem(&pem).map_err(|e| {
                    SyncError::Identity(format!("{}: not a usable key: {e}", path.display()))
                })?;
                Ok(Identity::from_key(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(sync_dir(root))?;
                let key = KeyPair::generate()
                    .map_err(|e| SyncError::Identity(format!("generating a key: {e}")))?;
                write_private(&path, key.serialize_pem().as_bytes())?;
                Ok(Identity::from_key(key))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A fresh identity kept in memory only (tests).
    ///
    /// # Errors
    /// [`SyncError::Identity`] if no key can be generated.
    pub fn ephemeral() -> Result<Identity, SyncError> {
        let key =
            KeyPair::generate().map_err(|e| SyncError::Identity(format!("generating: {e}")))?;
        Ok(Identity::from_key(key))
    }

    fn from_key(key: KeyPair) -> Identity {
        let id = node_id_of(&key.subject_public_key_info());
        Identity { key, id }
    }

    /// The node id (64 hex digits).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key as rustls signs with it, presented as a raw public key.
    pub(super) fn certified_key(&self) -> Result<Arc<CertifiedKey>, SyncError> {
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()));
        let signer = rustls::crypto::ring::sign::any_supported_type(&der)
            .map_err(|e| SyncError::Identity(format!("the key cannot sign: {e}")))?;
        let spki = CertificateDer::from(self.key.subject_public_key_info());
        Ok(Arc::new(CertifiedKey::new(vec![spki], signer)))
    }
}

/// Creates `path` with mode 0600 (owner only) and writes `bytes`.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), SyncError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// One trusted peer and what it may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedPeer {
    /// Its node id.
    pub id: String,
    /// Shard-name prefixes it may sync (empty: every shard).
    #[serde(default)]
    pub prefixes: Vec<String>,
    /// It may pull only (never push changes here).
    #[serde(default)]
    pub read_only: bool,
}

/// The peers a root trusts (`<root>/sync/trust.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustList {
    /// The peers, by id.
    pub peers: Vec<TrustedPeer>,
}

impl TrustList {
    /// The trust list of the root at `root` (empty when it has none).
    ///
    /// # Errors
    /// [`SyncError::Io`]; [`SyncError::InvalidArgument`] for a file that is not a trust list.
    pub fn load(root: &Path) -> Result<TrustList, SyncError> {
        let path = sync_dir(root).join("trust.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                SyncError::InvalidArgument(format!("{}: not a trust list: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TrustList::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds or replaces `peer` and writes the list (atomically: a temporary file renamed).
    ///
    /// # Errors
    /// [`SyncError::InvalidArgument`] for a bad node id or an empty prefix; [`SyncError::Io`].
    pub fn trust(root: &Path, peer: TrustedPeer) -> Result<TrustList, SyncError> {
        let id = parse_node_id(&peer.id)?;
        if peer.prefixes.iter().any(|p| p.is_empty()) {
            return Err(SyncError::InvalidArgument(
                "an empty --prefix: leave it out to grant every shard".into(),
            ));
        }
        let mut list = TrustList::load(root)?;
        list.peers.retain(|p| p.id != id);
        list.peers.push(TrustedPeer { id, ..peer });
        std::fs::create_dir_all(sync_dir(root))?;
        let tmp = sync_dir(root).join("trust.json.tmp");
        let json = serde_json::to_vec_pretty(&list)
            .map_err(|e| SyncError::InvalidArgument(e.to_string()))?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, sync_dir(root).join("trust.json"))?;
        Ok(list)
    }

    /// The peer with node id `id`, if trusted.
    pub fn peer(&self, id: &str) -> Option<&TrustedPeer> {
        self.peers.iter().find(|p| p.id == id)
    }

    /// The nodes that may sync shard `shard` with this root (pull or push): the membership
    /// tombstone collection waits for ([`sqlite_vector::Shard::collect_tombstones`]).
    pub fn members(&self, shard: &str) -> Vec<String> {
        self.peers
            .iter()
            .filter(|p| self.grant(&p.id, shard).is_some())
            .map(|p| p.id.clone())
            .collect()
    }

    /// What peer `id` may do with shard `shard` (`None`: nothing; it is not trusted, or the
    /// shard is outside its prefixes).
    pub fn grant(&self, id: &str, shard: &str) -> Option<Grant> {
        let p = self.peer(id)?;
        let covered = p.prefixes.is_empty() || p.prefixes.iter().any(|x| shard.starts_with(x));
        covered.then_some(Grant {
            pull: true,
            push: !p.read_only,
        })
    }
}
