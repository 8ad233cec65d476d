//! The storefront: the `site:` directory packed as a release per content hash, put on the host and switched
//! to with one rename, its release history for rollback, and the homepage check of `doctor` and the checklist.

mod bundle;
mod history;
pub mod homepage;
mod release;

pub use bundle::{Bundle, MAX_BYTES};
pub use history::{SiteHistory, SiteRelease, read_history};
pub use release::{release, serving, stage, switch_back, switch_to};

use crate::plan::DesiredSite;
use crate::stack::Stack;

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error("site directory `{path}`: {detail}")]
    Read { path: String, detail: String },
    #[error(
        "site directory `{dir}` has no `index.html` at its top\n  help: the storefront's page is `index.html`; nginx serves it for `/`"
    )]
    NoIndex { dir: String },
    #[error(
        "site directory `{dir}` holds {bytes} bytes, more than the {limit} a storefront release may hold\n  help: keep large media out of `site:` (serve them from elsewhere)"
    )]
    TooLarge { dir: String, bytes: u64, limit: u64 },
    #[error(transparent)]
    Transport(#[from] crate::transport::TransportError),
    #[error(transparent)]
    Store(#[from] crate::state::StoreError),
}

/// The storefront release the stack asks for (`None`: no `site:`).
pub fn desired(stack: &Stack) -> Result<Option<DesiredSite>, SiteError> {
    let Some(dir) = &stack.site else {
        return Ok(None);
    };
    let bundle = Bundle::read(dir)?;
    Ok(Some(DesiredSite {
        hash: bundle.hash.clone(),
        files: bundle.files.len(),
        archive: bundle.archive()?,
    }))
}
