//! The desired state of a host: what the stack, its rendered files and its built images call for.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::layout::short_hash;
use crate::secret::Secret;

/// Everything one environment of a stack should have on its host.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Desired {
    pub stack: String,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    pub images: Vec<DesiredImage>,
    pub files: Vec<DesiredFile>,
    /// In dependency order: a container comes after the ones it depends on.
    pub containers: Vec<ContainerSpec>,
    /// The hash of the nftables ruleset the stack asks for (`None`: no firewall is managed).
    pub firewall: Option<String>,
    /// The certificate nginx should serve (`None`: `tls: off`).
    pub certificate: Option<DesiredCertificate>,
    /// The storefront release nginx should serve (`None`: the stack names no `site:`).
    pub site: Option<DesiredSite>,
}

impl Desired {
    /// The services whose containers must be healthy before `service`'s starts: those it depends on, but a
    /// service released blue/green when `service` loads the upstream file. That one (nginx) asks Docker's DNS
    /// for the stable name on each request and answers with the maintenance page until a release is in it, so
    /// it starts beside the release instead of after it.
    pub fn waits_for(&self, service: &str) -> Vec<&str> {
        let Some(spec) = self.containers.iter().find(|c| c.service == service) else {
            return Vec::new();
        };
        let upstream = super::layout::upstream_path(&self.stack);
        let resolves_per_request = self
            .files
            .iter()
            .any(|f| f.path == upstream && f.reloads.as_deref() == Some(service));
        spec.depends_on
            .iter()
            .filter(|dep| {
                let released = self
                    .containers
                    .iter()
                    .any(|c| &c.service == *dep && c.release_alias.is_some());
                !(released && resolves_per_request)
            })
            .map(String::as_str)
            .collect()
    }
}

/// A storefront release: the `site:` directory packed, named by its content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredSite {
    /// The content hash (16 hex digits): the release directory's name on the host.
    pub hash: String,
    /// How many files it holds.
    pub files: usize,
    /// The release as a tar archive, unpacked on the host.
    #[serde(skip)]
    pub archive: Vec<u8>,
}

/// The certificate a stack asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredCertificate {
    /// The names it must carry.
    pub domains: Vec<String>,
    /// With `tls: provided`, the fingerprint of the operator's certificate; `None` with `tls: acme`.
    pub provided: Option<String>,
}

/// An image a container runs, identified by content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredImage {
    pub service: String,
    /// `sha256:…` image ID, the same on every engine it is loaded into.
    pub id: String,
    /// The tag it carries, e.g. `vl/vaibava-backend:3f2a9c1b0d4e`.
    pub reference: String,
    /// Whether it is streamed from where vldeploy runs (`build:`) or pulled by the host (`image:`).
    pub pulled: bool,
}

/// A file vldeploy manages on the host; its first line carries the content hash.
#[derive(Debug, Clone, Serialize)]
pub struct DesiredFile {
    pub path: String,
    pub hash: String,
    pub mode: u32,
    #[serde(skip)]
    pub content: Vec<u8>,
    /// The service whose config this is, reloaded (not restarted) when only the file changes.
    pub reloads: Option<String>,
}

/// A value in a container's environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum EnvEntry {
    Plain(String),
    Secret(Secret),
}

impl EnvEntry {
    pub fn expose(&self) -> &str {
        match self {
            EnvEntry::Plain(v) => v,
            EnvEntry::Secret(s) => s.expose(),
        }
    }
}

/// Where a mount comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountSource {
    Volume(String),
    HostPath(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Mount {
    pub source: MountSource,
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Publish {
    pub host_ip: Option<String>,
    pub host_port: u16,
    pub container_port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Health {
    /// Docker's `Test` array: `["CMD", …]` or `["CMD-SHELL", "…"]`.
    pub test: Vec<String>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub retries: u32,
}

/// One container as it should run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerSpec {
    pub service: String,
    pub name: String,
    pub image_id: String,
    pub image_ref: String,
    pub env: BTreeMap<String, EnvEntry>,
    /// Networks to join, each with the aliases the container answers to there.
    pub networks: BTreeMap<String, Vec<String>>,
    pub mounts: Vec<Mount>,
    pub publish: Vec<Publish>,
    pub health: Option<Health>,
    pub depends_on: Vec<String>,
    /// For services released blue/green: the network alias this exact configuration answers to
    /// (`backend-<config hash>`), which the nginx upstream names. Not part of the configuration hash.
    #[serde(default)]
    pub release_alias: Option<String>,
    /// The host's key for hashing secret values (`None`: secrets get a fixed placeholder, never a plain hash).
    #[serde(skip)]
    pub hash_key: Option<HashKey>,
}

impl ContainerSpec {
    /// Hashes of each aspect of the container: a change in any of them means the container is recreated.
    pub fn aspect_hashes(&self) -> BTreeMap<&'static str, String> {
        let mut out = BTreeMap::new();
        out.insert("image", self.image_id.clone());
        out.insert("env", hash_json(&self.env_hashes()));
        out.insert("networks", hash_json(&self.networks));
        out.insert("mounts", hash_json(&self.mounts));
        out.insert("ports", hash_json(&self.publish));
        out.insert("health", hash_json(&self.health));
        out
    }

    /// Per-variable hashes, so a plan can say which variable changed without showing any value. A secret's is
    /// keyed with the host's key (HMAC-SHA256), so a label cannot be checked offline against a guessed value.
    pub fn env_hashes(&self) -> BTreeMap<String, String> {
        self.env
            .iter()
            .map(|(k, v)| {
                let text = format!("{k}={}", v.expose());
                let hash = match (v, &self.hash_key) {
                    (EnvEntry::Plain(_), _) => short_hash(&text),
                    (EnvEntry::Secret(_), Some(key)) => key.mac(&text),
                    (EnvEntry::Secret(_), None) => UNKEYED.into(),
                };
                (k.clone(), hash)
            })
            .collect()
    }

    /// Whether any variable of its environment is secret.
    pub fn has_secrets(&self) -> bool {
        self.env.values().any(|v| matches!(v, EnvEntry::Secret(_)))
    }

    /// The hash over every aspect: the container's identity.
    pub fn config_hash(&self) -> String {
        short_hash(&serde_json::to_string(&self.aspect_hashes()).unwrap_or_default())
    }
}

/// What a secret's hash reads without a host key: the same for every value, so it tells nothing.
const UNKEYED: &str = "unkeyed";

/// The host's key for hashing secret values into labels: 32 random bytes kept on the host (mode 0600).
/// Never printed: `Debug` shows only its id.
#[derive(Clone, PartialEq, Eq)]
pub struct HashKey([u8; 32]);

impl HashKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key as stored: 64 hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Reads a stored key (64 hex digits, surrounding whitespace ignored).
    pub fn parse_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text.trim()).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// The first 16 hex digits of HMAC-SHA256(key, `text`).
    pub fn mac(&self, text: &str) -> String {
        hex::encode(&hmac_sha256(&self.0, text.as_bytes())[..8])
    }

    /// A name for the key that reveals nothing of it, recorded in labels so a change of key is told apart
    /// from a change of value.
    pub fn id(&self) -> String {
        self.mac("vldeploy hash key id")
    }
}

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HashKey({})", self.id())
    }
}

/// HMAC-SHA256 (RFC 2104) of `message` under `key`.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    // HMAC takes a key of any length, so this cannot fail.
    let Ok(mut mac) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key) else {
        return [0; 32];
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The full SHA-256 of some bytes, in hex.
pub fn content_hash(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

fn hash_json<T: Serialize>(value: &T) -> String {
    short_hash(&serde_json::to_string(value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 of RFC 4231.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_hash_key_round_trips_and_never_prints_itself() {
        let key = HashKey::from_bytes([0xab; 32]);
        assert_eq!(
            HashKey::parse_hex(&format!("{}\n", key.to_hex())),
            Some(key.clone())
        );
        assert_eq!(HashKey::parse_hex("abcd"), None);
        assert_eq!(HashKey::parse_hex("not hex"), None);
        assert!(!format!("{key:?}").contains(&key.to_hex()[..16]), "{key:?}");
        assert_ne!(key.mac("A=1"), HashKey::from_bytes([0xac; 32]).mac("A=1"));
    }
}
