//! Images that come from elsewhere than a build: pulled from a registry, or imported from a root filesystem.

use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::{Stream, StreamExt};

use super::{Engine, EngineError};

impl Engine {
    /// Pulls `repository:tag` (`docker pull`).
    pub async fn pull(&self, repository: &str, tag: &str) -> Result<(), EngineError> {
        let opts = CreateImageOptionsBuilder::new()
            .from_image(repository)
            .tag(tag)
            .build();
        let mut stream = self.docker.create_image(Some(opts), None, None);
        while let Some(item) = stream.next().await {
            item.map_err(self.fail(format!("pulling `{repository}:{tag}`")))?;
        }
        Ok(())
    }

    /// Makes `repository:tag` from a tar of a root filesystem (`docker import`), with Dockerfile `changes`
    /// such as `CMD ["/bin/bash"]`.
    pub async fn import_rootfs(
        &self,
        rootfs_tar: impl Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static,
        repository: &str,
        tag: &str,
        changes: Vec<String>,
    ) -> Result<(), EngineError> {
        let opts = CreateImageOptionsBuilder::new()
            .from_src("-")
            .repo(repository)
            .tag(tag)
            .changes(changes)
            .build();
        let mut stream =
            self.docker
                .create_image(Some(opts), Some(bollard::body_try_stream(rootfs_tar)), None);
        while let Some(item) = stream.next().await {
            item.map_err(self.fail(format!("import of `{repository}:{tag}`")))?;
        }
        Ok(())
    }
}
