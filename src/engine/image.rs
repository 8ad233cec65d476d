//! Images: built by the engine where vldeploy runs, streamed to a host's engine only when it lacks them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bollard::query_parameters::{
    BuildImageOptionsBuilder, ImportImageOptionsBuilder, TagImageOptionsBuilder,
};
use futures_util::StreamExt;

use super::{Engine, EngineError, build_context};

/// What to build and how to name it.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub service: String,
    pub context: PathBuf,
    pub dockerfile: String,
    pub args: HashMap<String, String>,
    /// Repository part of the tag, e.g. `vl/vaibava-backend`; the tag is the short image ID.
    pub repository: String,
    /// Build even when an image built from the same inputs exists (its base image may have changed).
    pub fresh: bool,
}

/// Builds the image and tags it `<repository>:<first 12 hex digits of its ID>`. Returns `(id, reference)`.
pub async fn build_image(
    engine: &Engine,
    req: &BuildRequest,
) -> Result<(String, String), EngineError> {
    let context = build_context(&req.context, &req.dockerfile)?;
    let inputs = inputs_hash(&context, req);
    if !req.fresh {
        if let Some(id) = built_from(engine, &inputs, &req.repository).await {
            return tag(engine, req, id).await;
        }
    }
    let building = format!("{}:building", req.repository);
    let labels: HashMap<String, String> =
        [(INPUTS_LABEL.to_string(), inputs)].into_iter().collect();
    let opts = BuildImageOptionsBuilder::new()
        .dockerfile(&req.dockerfile)
        .t(&building)
        .rm(true)
        .forcerm(true)
        .buildargs(&req.args)
        .labels(&labels)
        .build();
    let mut stream =
        engine
            .docker
            .build_image(opts, None, Some(bollard::body_full(context.into())));
    let mut log: Vec<String> = Vec::new();
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| EngineError::Build {
            service: req.service.clone(),
            detail: e.to_string(),
        })?;
        if let Some(line) = info.stream {
            let line = line.trim_end().to_string();
            if !line.is_empty() {
                tracing::debug!(service = %req.service, "{line}");
                log.push(line);
            }
        }
        if let Some(err) = info.error_detail.and_then(|d| d.message) {
            let tail: Vec<String> = log.iter().rev().take(15).rev().cloned().collect();
            return Err(EngineError::Build {
                service: req.service.clone(),
                detail: format!("{err}\n  last build output:\n    {}", tail.join("\n    ")),
            });
        }
    }
    let inspect = engine
        .docker
        .inspect_image(&building)
        .await
        .map_err(|e| EngineError::Build {
            service: req.service.clone(),
            detail: format!("the built image cannot be found: {e}"),
        })?;
    tag(engine, req, inspect.id.unwrap_or_default()).await
}

/// The label that records what an image was built from: context, Dockerfile and build arguments.
const INPUTS_LABEL: &str = "vldeploy.build-inputs";

fn inputs_hash(context: &[u8], req: &BuildRequest) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(context);
    h.update(req.dockerfile.as_bytes());
    let mut args: Vec<_> = req.args.iter().collect();
    args.sort();
    for (k, v) in args {
        h.update(format!("\0{k}={v}").as_bytes());
    }
    hex::encode(h.finalize())
}

/// An image the engine already built from exactly these inputs, if any (so an unchanged build costs one query).
///
/// Two stacks building the same inputs at the same moment can each get an image of their own (same label, other
/// IDs), so the choice must be stable: this repository's own newest image first, then the newest of any.
async fn built_from(engine: &Engine, inputs: &str, repository: &str) -> Option<String> {
    let mut filters: HashMap<&str, Vec<String>> = HashMap::new();
    filters.insert("label", vec![format!("{INPUTS_LABEL}={inputs}")]);
    let opts = bollard::query_parameters::ListImagesOptionsBuilder::new()
        .filters(&filters)
        .build();
    let images = engine.docker.list_images(Some(opts)).await.ok()?;
    pick_built(
        images
            .into_iter()
            .map(|i| (i.id, i.created, i.repo_tags))
            .collect(),
        repository,
    )
}

/// Chooses among images carrying the same build inputs: `(id, created, tags)`.
fn pick_built(mut images: Vec<(String, i64, Vec<String>)>, repository: &str) -> Option<String> {
    let prefix = format!("{repository}:");
    let ours = |tags: &[String]| tags.iter().any(|t| t.starts_with(&prefix));
    images.sort_by(|a, b| {
        ours(&b.2)
            .cmp(&ours(&a.2))
            .then(b.1.cmp(&a.1))
            .then(a.0.cmp(&b.0))
    });
    images.into_iter().next().map(|i| i.0)
}

/// Tags an image `<repository>:<first 12 hex digits of its ID>`. Returns `(id, reference)`.
async fn tag(
    engine: &Engine,
    req: &BuildRequest,
    id: String,
) -> Result<(String, String), EngineError> {
    let tag = crate::plan::short_id(&id).to_string();
    let opts = TagImageOptionsBuilder::new()
        .repo(&req.repository)
        .tag(&tag)
        .build();
    engine
        .docker
        .tag_image(&id, Some(opts))
        .await
        .map_err(|e| EngineError::Build {
            service: req.service.clone(),
            detail: format!("tagging: {e}"),
        })?;
    Ok((id, format!("{}:{tag}", req.repository)))
}

/// Streams images from one engine to another (`docker save | docker load`), layers shared between them sent once.
/// `progress` is called with the bytes sent so far.
pub async fn transfer_images(
    from: &Engine,
    to: &Engine,
    references: &[String],
    progress: Arc<dyn Fn(u64) + Send + Sync>,
) -> Result<u64, EngineError> {
    let refs: Vec<&str> = references.iter().map(String::as_str).collect();
    let fail = |detail: String| match to.lost() {
        Some(reason) => EngineError::Lost {
            host: to.host.clone(),
            action: "sending images".to_owned(),
            reason,
        },
        None => EngineError::Transfer {
            host: to.host.clone(),
            detail,
        },
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(16);
    let sent = Arc::new(AtomicU64::new(0));
    let export = {
        let docker = from.docker.clone();
        let refs: Vec<String> = refs.iter().map(|s| (*s).to_string()).collect();
        let sent = sent.clone();
        tokio::spawn(async move {
            let names: Vec<&str> = refs.iter().map(String::as_str).collect();
            let mut stream = docker.export_images(&names);
            while let Some(chunk) = stream.next().await {
                let item = chunk.map_err(std::io::Error::other);
                if let Ok(b) = &item {
                    let total = sent.fetch_add(b.len() as u64, Ordering::Relaxed) + b.len() as u64;
                    progress(total);
                }
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    break;
                }
            }
        })
    };
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let opts = ImportImageOptionsBuilder::new().quiet(true).build();
    let mut load = to.docker.import_image_stream(opts, body, None);
    while let Some(item) = load.next().await {
        let info = item.map_err(|e| fail(e.to_string()))?;
        if let Some(msg) = info.error_detail.and_then(|d| d.message) {
            return Err(fail(msg));
        }
    }
    export.await.map_err(|e| fail(e.to_string()))?;
    Ok(sent.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::pick_built;

    fn img(id: &str, created: i64, tags: &[&str]) -> (String, i64, Vec<String>) {
        (
            id.into(),
            created,
            tags.iter().map(|t| t.to_string()).collect(),
        )
    }

    #[test]
    fn the_repositorys_own_build_wins_over_a_newer_one_of_another_stack() {
        let images = vec![
            img("sha256:b", 20, &["vl/other-backend:b"]),
            img("sha256:a", 10, &["vl/shop-backend:a"]),
        ];
        assert_eq!(
            pick_built(images, "vl/shop-backend").as_deref(),
            Some("sha256:a")
        );
    }

    #[test]
    fn without_an_own_build_the_newest_is_taken_whatever_the_listing_order() {
        let mut images = vec![
            img("sha256:a", 10, &["vl/x-backend:a"]),
            img("sha256:b", 20, &["vl/y-backend:b"]),
        ];
        assert_eq!(
            pick_built(images.clone(), "vl/shop-backend").as_deref(),
            Some("sha256:b")
        );
        images.reverse();
        assert_eq!(
            pick_built(images, "vl/shop-backend").as_deref(),
            Some("sha256:b")
        );
        assert_eq!(pick_built(vec![], "vl/shop-backend"), None);
    }
}
