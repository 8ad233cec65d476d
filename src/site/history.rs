//! The storefront's release history on the host: which content hash was put live, when, by whom.

use serde::{Deserialize, Serialize};

use crate::layout;
use crate::state::store::{self, Document};
use crate::transport::Remote;

/// One storefront release, as `vldeploy releases` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteRelease {
    /// The content hash, the release directory's name.
    pub hash: String,
    pub created: u64,
    pub actor: String,
    #[serde(default)]
    pub git: Option<String>,
}

impl SiteRelease {
    /// How `releases` and `rollback` name it: `site-<hash>`.
    pub fn id(&self) -> String {
        format!("site-{}", self.hash)
    }
}

/// The storefront releases the host keeps, oldest first; the last is the one most recently put live.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteHistory {
    pub releases: Vec<SiteRelease>,
}

impl Document for SiteHistory {
    const KIND: &'static str = "storefront release history";
    const FIX: &'static str = "run `vldeploy up` (the history starts again from the next release)";
}

impl SiteHistory {
    /// Records `release` as the newest, keeping the `keep` most recent; returns the hashes kept.
    pub fn push(&mut self, release: SiteRelease, keep: usize) -> Vec<String> {
        self.releases.retain(|r| r.hash != release.hash);
        self.releases.push(release);
        let excess = self.releases.len().saturating_sub(keep.max(1));
        self.releases.drain(..excess);
        self.releases.iter().map(|r| r.hash.clone()).collect()
    }

    /// The newest release that is not `live`: what `rollback` goes back to.
    pub fn previous(&self, live: Option<&str>) -> Option<&SiteRelease> {
        self.releases
            .iter()
            .rev()
            .find(|r| Some(r.hash.as_str()) != live)
    }
}

pub async fn read_history(remote: &Remote, stack: &str) -> Result<SiteHistory, store::StoreError> {
    Ok(store::read(remote, &layout::site_history(stack))
        .await?
        .unwrap_or_default())
}

pub(super) async fn write_history(
    remote: &Remote,
    stack: &str,
    history: &SiteHistory,
) -> Result<(), store::StoreError> {
    store::write(remote, &layout::site_history(stack), history).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(hash: &str, created: u64) -> SiteRelease {
        SiteRelease {
            hash: hash.into(),
            created,
            actor: "ops".into(),
            git: None,
        }
    }

    #[test]
    fn the_history_keeps_the_newest_and_names_the_previous() {
        let mut h = SiteHistory::default();
        assert_eq!(h.push(release("a", 1), 3), vec!["a"]);
        h.push(release("b", 2), 3);
        h.push(release("c", 3), 3);
        assert_eq!(h.push(release("d", 4), 3), vec!["b", "c", "d"]);
        assert_eq!(
            h.previous(Some("d")).map(SiteRelease::id),
            Some("site-c".into())
        );
        // Going back to `c` makes it the newest; the next rollback goes to `d`.
        assert_eq!(h.push(release("c", 5), 3), vec!["b", "d", "c"]);
        assert_eq!(h.previous(Some("c")).map(|r| r.hash.as_str()), Some("d"));
        assert_eq!(SiteHistory::default().previous(None), None);
    }
}
