//! Images: built by the engine where vldeploy runs, named by their build inputs.

use std::collections::HashMap;
use std::path::PathBuf;

use bollard::query_parameters::TagImageOptionsBuilder;

use super::{BuildInputs, Engine, EngineError, build_context, context::context_stamp};

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
    /// What the last build of this context recorded; with the same stamp, its inputs are not read again.
    pub recorded: Option<StampRecord>,
}

/// A build's stamp (its context's file metadata, Dockerfile, arguments and base images) and the build inputs
/// it hashed to: kept by the caller between runs so an untouched context costs no read of its files.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StampRecord {
    pub stamp: String,
    pub inputs: String,
}

/// An image built (or found built) from a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub id: String,
    /// `<repository>:<first 12 hex digits of its ID>`.
    pub reference: String,
    /// The hash of what it was built from (its `vldeploy.build-inputs` label).
    pub inputs: String,
    /// The stamp of this build and its inputs, for [`BuildRequest::recorded`] next time (none while a file
    /// of the context is too fresh to be judged by its times).
    pub record: Option<StampRecord>,
}

/// Builds the image and tags it `<repository>:<first 12 hex digits of its ID>`.
///
/// Builds are not byte-for-byte reproducible (a `RUN` step writes files with the time it ran, and the image
/// records when it was made), so two builds of the same inputs can give two IDs. Whatever was built, the image
/// used is the first one built from these inputs, so every build of them names the same image.
pub async fn build_image(engine: &Engine, req: &BuildRequest) -> Result<Built, EngineError> {
    let bases = base_ids(engine, req).await;
    let stamp = stamp(req, &bases)?;
    if !req.fresh
        && let Some(stamp) = &stamp
        && let Some(known) = req.recorded.as_ref().filter(|r| r.stamp == *stamp)
        && let Some(id) = built_from(engine, &known.inputs, &req.repository).await
    {
        return tag(engine, req, id, known.inputs.clone(), Some(stamp.clone())).await;
    }
    let context = build_context(&req.context, &req.dockerfile)?;
    let inputs = BuildInputs {
        context: &context,
        dockerfile: &req.dockerfile,
        args: &req.args,
        bases: &bases,
    }
    .hash();
    if !req.fresh {
        if let Some(id) = built_from(engine, &inputs, &req.repository).await {
            return tag(engine, req, id, inputs, stamp).await;
        }
    }
    let building = format!("{}:building", req.repository);
    let labels: HashMap<String, String> = [(INPUTS_LABEL.to_string(), inputs.clone())]
        .into_iter()
        .collect();
    let build_inputs = BuildInputs {
        context: &context,
        dockerfile: &req.dockerfile,
        args: &req.args,
        bases: &bases,
    };
    engine
        .build(&build_inputs, &building, &labels)
        .await
        .map_err(|failure| EngineError::Build {
            service: req.service.clone(),
            detail: if failure.output.is_empty() {
                failure.message.clone()
            } else {
                format!(
                    "{}\n  last build output:\n    {}",
                    failure.message,
                    failure.tail(15).join("\n    ")
                )
            },
        })?;
    let built = engine
        .docker
        .inspect_image(&building)
        .await
        .map_err(|e| EngineError::Build {
            service: req.service.clone(),
            detail: format!("the built image cannot be found: {e}"),
        })?;
    let id = built_from(engine, &inputs, &req.repository)
        .await
        .or(built.id)
        .unwrap_or_default();
    tag(engine, req, id, inputs, stamp).await
}

/// The stamp of a build: its context's files by metadata ([`context_stamp`]), the Dockerfile's name, the build
/// arguments and the IDs of the base images.
/// None while a file of the context is too fresh to judge by its times.
fn stamp(req: &BuildRequest, bases: &[String]) -> Result<Option<String>, EngineError> {
    use sha2::{Digest, Sha256};
    let now = std::time::SystemTime::now();
    let Some(files) = context_stamp(&req.context, &req.dockerfile, now)? else {
        return Ok(None);
    };
    let mut h = Sha256::new();
    h.update(files.as_bytes());
    let mut args: Vec<_> = req.args.iter().collect();
    args.sort();
    for (k, v) in args {
        h.update(format!("\0{k}={v}").as_bytes());
    }
    for id in bases {
        h.update(format!("\0FROM {id}").as_bytes());
    }
    Ok(Some(hex::encode(h.finalize())))
}

/// The IDs of the images the Dockerfile builds `FROM` (build arguments substituted), where the engine has
/// them: a new base image is a new input, even under the same name.
async fn base_ids(engine: &Engine, req: &BuildRequest) -> Vec<String> {
    let text = std::fs::read_to_string(req.context.join(&req.dockerfile)).unwrap_or_default();
    let mut ids = Vec::new();
    for reference in from_references(&text, &req.args) {
        if let Ok(image) = engine.docker.inspect_image(&reference).await {
            ids.extend(image.id);
        }
    }
    ids
}

/// The images a Dockerfile's `FROM` lines name, with `${ARG}`/`$ARG` replaced by the build arguments or the
/// Dockerfile's `ARG` defaults. Stages named by an earlier `AS` are not images.
fn from_references(dockerfile: &str, args: &HashMap<String, String>) -> Vec<String> {
    let mut defaults: HashMap<String, String> = HashMap::new();
    let mut stages: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for line in dockerfile.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        let Some(instruction) = words.next() else {
            continue;
        };
        if instruction.eq_ignore_ascii_case("ARG") {
            if let Some((k, v)) = words.next().and_then(|a| a.split_once('=')) {
                defaults.insert(k.to_string(), v.trim_matches('"').to_string());
            }
        } else if instruction.eq_ignore_ascii_case("FROM") {
            let rest: Vec<&str> = words.filter(|w| !w.starts_with("--")).collect();
            let Some(image) = rest.first() else { continue };
            let mut image = (*image).to_string();
            for (k, v) in defaults.iter().chain(args.iter()) {
                let value = args.get(k).unwrap_or(v);
                image = image
                    .replace(&format!("${{{k}}}"), value)
                    .replace(&format!("${k}"), value);
            }
            if !stages.contains(&image) && !image.contains('$') && image != "scratch" {
                out.push(image);
            }
            if let [_, as_kw, name, ..] = rest.as_slice() {
                if as_kw.eq_ignore_ascii_case("AS") {
                    stages.push((*name).to_string());
                }
            }
        }
    }
    out
}

/// The label that records what an image was built from: context, Dockerfile and build arguments.
pub const INPUTS_LABEL: &str = "vldeploy.build-inputs";

/// An image the engine already built from exactly these inputs, if any (so an unchanged build costs one query).
///
/// Two builds of the same inputs at the same moment can each get an image of their own (same label, other
/// IDs), so the choice must be stable: this repository's own oldest image first, then the oldest of any. The
/// oldest stays the oldest as builds add images; the newest would change with every build.
async fn built_from(engine: &Engine, inputs: &str, repository: &str) -> Option<String> {
    let images = labelled(engine, inputs).await.ok()?;
    pick_built(
        images
            .into_iter()
            .map(|i| (i.id, i.created, i.repo_tags))
            .collect(),
        repository,
    )
}

/// The images on `engine` whose `vldeploy.build-inputs` label is `inputs`.
async fn labelled(
    engine: &Engine,
    inputs: &str,
) -> Result<Vec<bollard::models::ImageSummary>, EngineError> {
    let mut filters: HashMap<&str, Vec<String>> = HashMap::new();
    filters.insert("label", vec![format!("{INPUTS_LABEL}={inputs}")]);
    let opts = bollard::query_parameters::ListImagesOptionsBuilder::new()
        .filters(&filters)
        .build();
    engine
        .docker
        .list_images(Some(opts))
        .await
        .map_err(engine.fail("listing images"))
}

/// Chooses among images carrying the same build inputs: `(id, created, tags)`.
fn pick_built(mut images: Vec<(String, i64, Vec<String>)>, repository: &str) -> Option<String> {
    let prefix = format!("{repository}:");
    let ours = |tags: &[String]| tags.iter().any(|t| t.starts_with(&prefix));
    images.sort_by(|a, b| {
        ours(&b.2)
            .cmp(&ours(&a.2))
            .then(a.1.cmp(&b.1))
            .then(a.0.cmp(&b.0))
    });
    images.into_iter().next().map(|i| i.0)
}

/// The image the host should run for a build, given the host's images with the same build inputs
/// (`(id, created)`) and the image its container runs now: the running one when it is among them, else the
/// built one when the host has it, else the host's oldest. Only when the host has none is `built` sent.
pub fn pick_on_host(built: &str, host: &[(String, i64)], running: Option<&str>) -> String {
    if let Some(r) = running.filter(|r| host.iter().any(|(id, _)| id == r)) {
        return r.to_string();
    }
    if host.iter().any(|(id, _)| id == built) {
        return built.to_string();
    }
    host.iter()
        .min_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)))
        .map_or_else(|| built.to_string(), |(id, _)| id.clone())
}

/// Images on `engine` carrying these build inputs: `(id, created)`.
pub async fn images_built_from(
    engine: &Engine,
    inputs: &str,
) -> Result<Vec<(String, i64)>, EngineError> {
    let images = labelled(engine, inputs).await?;
    Ok(images.into_iter().map(|i| (i.id, i.created)).collect())
}

/// Tags an image `<repository>:<first 12 hex digits of its ID>`. Returns `(id, reference)`.
async fn tag(
    engine: &Engine,
    req: &BuildRequest,
    id: String,
    inputs: String,
    stamp: Option<String>,
) -> Result<Built, EngineError> {
    let tag = crate::layout::short_id(&id).to_string();
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
    Ok(Built {
        reference: format!("{}:{tag}", req.repository),
        id,
        record: stamp.map(|stamp| StampRecord {
            stamp,
            inputs: inputs.clone(),
        }),
        inputs,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::{from_references, pick_built, pick_on_host};

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
    fn without_an_own_build_the_oldest_is_taken_whatever_the_listing_order() {
        let mut images = vec![
            img("sha256:a", 10, &["vl/x-backend:a"]),
            img("sha256:b", 20, &["vl/y-backend:b"]),
        ];
        assert_eq!(
            pick_built(images.clone(), "vl/shop-backend").as_deref(),
            Some("sha256:a")
        );
        images.reverse();
        assert_eq!(
            pick_built(images, "vl/shop-backend").as_deref(),
            Some("sha256:a")
        );
        assert_eq!(pick_built(vec![], "vl/shop-backend"), None);
    }

    #[test]
    fn a_second_build_of_the_same_inputs_names_the_first_image() {
        // Two builds at once gave two IDs; both builds, and every later one, pick the same.
        let first = vec![img("sha256:b", 20, &["vl/shop-backend:b"])];
        let both = vec![
            img("sha256:b", 20, &["vl/shop-backend:b"]),
            img("sha256:a", 25, &["vl/shop-backend:a"]),
        ];
        assert_eq!(
            pick_built(first, "vl/shop-backend").as_deref(),
            Some("sha256:b")
        );
        assert_eq!(
            pick_built(both, "vl/shop-backend").as_deref(),
            Some("sha256:b")
        );
    }

    #[test]
    fn the_host_keeps_the_image_it_has_for_the_same_inputs() {
        let host = vec![("sha256:h2".to_string(), 30), ("sha256:h1".to_string(), 20)];
        let table: [(&str, &[(String, i64)], Option<&str>, &str); 5] = [
            // What the container runs wins: no release for another ID of the same inputs.
            ("sha256:h1", &host, Some("sha256:h2"), "sha256:h2"),
            // Else the built image, when the host has it.
            ("sha256:h2", &host, Some("sha256:other"), "sha256:h2"),
            // Else the host's oldest of those inputs: nothing is sent.
            ("sha256:local", &host, None, "sha256:h1"),
            // The host has none: the built image is sent.
            ("sha256:local", &[], Some("sha256:h1"), "sha256:local"),
            ("sha256:local", &[], None, "sha256:local"),
        ];
        for (built, host, running, want) in table {
            assert_eq!(
                pick_on_host(built, host, running),
                want,
                "{built} {running:?}"
            );
        }
    }

    #[test]
    fn from_lines_name_their_images_with_arguments_substituted() {
        let args: HashMap<String, String> = [("BASE".to_string(), "vl/base:1".to_string())]
            .into_iter()
            .collect();
        let text = "ARG BASE=debian:bookworm-slim\nARG OTHER=alpine:3\nFROM ${BASE}\nFROM --platform=linux/amd64 $OTHER AS build\nFROM build\nFROM scratch\n";
        assert_eq!(from_references(text, &args), vec!["vl/base:1", "alpine:3"]);
        assert_eq!(
            from_references("FROM ${BASE}\n", &HashMap::new()),
            Vec::<String>::new()
        );
    }
}
