//! Reading the host: containers, networks, volumes, images, managed files and what nginx last loaded.

mod hash_key;

use futures_util::future::join_all;

pub use hash_key::{
    ephemeral as ephemeral_hash_key, key_path as hash_key_path, read as read_hash_key,
    read_or_create as hash_key,
};

use crate::engine::{Engine, EngineError};
use crate::layout::loaded_marker;
use crate::plan::{Desired, Facts};
use crate::transport::{Remote, TransportError};

#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(
        "the hash key `{path}` on `{host}` is unreadable (not 64 hex digits)\n  help: remove it; the next `vldeploy up` makes a new one (containers with secrets are then re-created once)"
    )]
    HashKey { host: String, path: String },
    #[error("no random bytes for a new hash key: {0}")]
    Random(String),
}

/// Gathers what the planner needs to compare `desired` with the host, in as few round trips as possible.
pub async fn gather(
    remote: &Remote,
    engine: &Engine,
    desired: &Desired,
) -> Result<Facts, FactsError> {
    let stack = desired.stack.as_str();
    let image_checks = join_all(
        desired
            .images
            .iter()
            .map(|i| async move { (i.id.clone(), engine.has_image(&i.id).await) }),
    );
    let (networks, volumes, containers, images, files) = tokio::join!(
        engine.stack_networks(stack),
        engine.stack_volumes(stack),
        engine.stack_containers(stack),
        image_checks,
        read_files(remote, desired),
    );
    let mut facts = Facts {
        networks: networks?.into_iter().collect(),
        volumes: volumes?.into_iter().collect(),
        containers: containers?,
        ..Facts::default()
    };
    for (id, present) in images {
        if present? {
            facts.images.insert(id);
        }
    }
    let (files, loaded) = files?;
    facts.files = files;
    facts.loaded = loaded;
    Ok(facts)
}

type FileFacts = (
    std::collections::BTreeMap<String, String>,
    std::collections::BTreeMap<String, String>,
);

/// One command: the SHA-256 of every managed file that exists, then each service's loaded marker.
async fn read_files(remote: &Remote, desired: &Desired) -> Result<FileFacts, TransportError> {
    let mut services: Vec<&str> = desired
        .files
        .iter()
        .filter_map(|f| f.reloads.as_deref())
        .collect();
    services.sort_unstable();
    services.dedup();
    let paths: Vec<&str> = desired.files.iter().map(|f| f.path.as_str()).collect();
    let markers: Vec<(String, String)> = services
        .iter()
        .map(|s| ((*s).to_owned(), loaded_marker(&desired.stack, s)))
        .collect();
    let out = remote
        .exec(&crate::remote::facts::file_hashes(&paths, &markers))
        .await?;
    Ok(parse_file_facts(&String::from_utf8_lossy(&out.stdout)))
}

fn parse_file_facts(text: &str) -> FileFacts {
    let mut files = std::collections::BTreeMap::new();
    let mut loaded = std::collections::BTreeMap::new();
    let mut in_markers = false;
    for line in text.lines() {
        if line == "--" {
            in_markers = true;
            continue;
        }
        if in_markers {
            if let Some((service, hash)) = line.split_once(' ') {
                if !hash.trim().is_empty() {
                    loaded.insert(service.to_string(), hash.trim().to_string());
                }
            }
        } else if let Some((hash, path)) = line.split_once("  ") {
            files.insert(path.to_string(), hash.to_string());
        }
    }
    (files, loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hashes_and_markers() {
        let text = "abc  /var/lib/vldeploy/s/nginx/conf.d/site.conf\ndef  /var/lib/vldeploy/s/www/index.html\n--\nnginx 1234\nother \n";
        let (files, loaded) = parse_file_facts(text);
        assert_eq!(files.len(), 2);
        assert_eq!(files["/var/lib/vldeploy/s/www/index.html"], "def");
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded["nginx"], "1234");
    }
}
