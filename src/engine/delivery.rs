//! Image delivery: a gzip-compressed `docker load` archive that carries only the layers the host's engine lacks.
//!
//! The local engine's `docker save` stream is read once and rewritten on the fly: the image config, the
//! manifest and the small per-layer files pass, the content (`layer.tar`) of a layer whose chain ID the host
//! already holds is left out. The loader of Docker's image store (checked on 20.10) looks a layer up by its chain
//! ID first and opens its file only when it lacks it, so such an archive loads. An engine that refuses it gets
//! the whole image, and the delivery says so. Docker 20.10's loader reads gzip, not zstd.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bollard::query_parameters::{ImportImageOptionsBuilder, ListImagesOptionsBuilder};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::{Engine, EngineError};

/// Called with the bytes of layer content processed so far and the estimated total.
pub type Progress = Arc<dyn Fn(u64, Option<u64>) + Send + Sync>;

/// What a delivery sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Bytes that went to the host: the compressed archives.
    pub sent: u64,
    pub images: usize,
    /// Layers whose content was sent.
    pub layers_sent: usize,
    /// Layers left out because the host's engine had them (or an earlier image of this delivery brought them).
    pub layers_present: usize,
    /// Images sent whole because the host's engine refused an archive without the layers it has, with why.
    pub whole: Vec<(String, String)>,
}

impl Delivered {
    /// `sent 1234 bytes (1 image: 1 layer sent, 2 already on the host)`.
    pub fn summary(&self) -> String {
        let plural = |n: usize, one: &str, many: &str| {
            if n == 1 {
                format!("{n} {one}")
            } else {
                format!("{n} {many}")
            }
        };
        format!(
            "sent {} bytes ({}: {} sent, {} already on the host)",
            self.sent,
            plural(self.images, "image", "images"),
            plural(self.layers_sent, "layer", "layers"),
            self.layers_present
        )
    }
}

/// Sends `references` from `from` to `to`, each image's missing layers only, a layer shared by several images
/// once. `progress` follows the layer content read.
pub async fn deliver_images(
    from: &Engine,
    to: &Engine,
    references: &[String],
    progress: Progress,
) -> Result<Delivered, EngineError> {
    let mut held = to.layer_chains().await?;
    let mut plans = Vec::new();
    for reference in references {
        let plan = from.layer_plan(reference, &held).await?;
        held.extend(plan.chains.iter().cloned());
        plans.push(Arc::new(plan));
    }
    let total: u64 = plans.iter().map(|p| p.missing_bytes()).sum();
    let processed = Arc::new(AtomicU64::new(0));
    let mut done = Delivered::default();
    for plan in plans {
        let tracked = Tracked {
            processed: processed.clone(),
            total,
            progress: progress.clone(),
        };
        let sent = match send(from, to, plan.clone(), false, tracked.clone()).await {
            Ok(sent) => sent,
            Err(Failure { sent, reason }) if plan.leaves_out_any() && to.lost().is_none() => {
                tracing::warn!(image = %plan.reference, "partial archive refused: {reason}");
                done.sent += sent;
                done.whole.push((plan.reference.clone(), reason));
                let sent = send(from, to, plan.clone(), true, tracked)
                    .await
                    .map_err(|f| to.transfer_failed(f.reason))?;
                done.layers_sent += plan.chains.len();
                done.sent += sent;
                done.images += 1;
                continue;
            }
            Err(f) => return Err(to.transfer_failed(f.reason)),
        };
        done.sent += sent;
        done.images += 1;
        let present = plan.present.iter().filter(|p| **p).count();
        done.layers_present += present;
        done.layers_sent += plan.chains.len() - present;
    }
    Ok(done)
}

/// Shared progress of one delivery.
#[derive(Clone)]
struct Tracked {
    processed: Arc<AtomicU64>,
    total: u64,
    progress: Progress,
}

/// A send that did not load: the bytes that went out, and why.
struct Failure {
    sent: u64,
    reason: String,
}

/// One image's layers as `docker save` names them, and which of them the receiving engine has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LayerPlan {
    pub(crate) reference: String,
    /// The uncompressed digest of each layer, bottom first (`RootFS.Layers`).
    pub(crate) diff_ids: Vec<String>,
    pub(crate) chains: Vec<String>,
    /// The directory `docker save` (legacy layout) gives every layer but the top one.
    pub(crate) dirs: Vec<String>,
    pub(crate) present: Vec<bool>,
    /// Estimated bytes of each layer's content.
    pub(crate) sizes: Vec<u64>,
}

impl LayerPlan {
    pub(crate) fn new(
        reference: &str,
        diff_ids: Vec<String>,
        held: &HashSet<String>,
        sizes: Vec<u64>,
    ) -> Self {
        let chains = chain_ids(&diff_ids);
        let dirs = save_dirs(&chains);
        let present = chains.iter().map(|c| held.contains(c)).collect();
        Self {
            reference: reference.to_string(),
            diff_ids,
            chains,
            dirs,
            present,
            sizes,
        }
    }

    fn leaves_out_any(&self) -> bool {
        self.present.iter().any(|p| *p)
    }

    fn missing_bytes(&self) -> u64 {
        self.sizes
            .iter()
            .zip(&self.present)
            .filter(|(_, p)| !**p)
            .map(|(s, _)| *s)
            .sum()
    }

    /// Whether the archive entry at `path` is sent. Only layer content is ever left out: `<dir>/layer.tar`
    /// (legacy layout; a directory not computed is the top layer's) or `blobs/sha256/<diff ID>` (OCI layout,
    /// uncompressed layers), when the host has that layer.
    pub(crate) fn keeps(&self, path: &str) -> bool {
        let path = path.trim_start_matches("./");
        if let Some(dir) = path.strip_suffix("/layer.tar") {
            if !is_hex64(dir) {
                return true;
            }
            return match self.dirs.iter().position(|d| d == dir) {
                Some(i) => !self.present[i],
                // The top layer: when the host has it, it has every layer below as well.
                None => !self.present.last().copied().unwrap_or(false),
            };
        }
        if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            let id = format!("sha256:{hex}");
            if let Some(i) = self.diff_ids.iter().position(|d| *d == id) {
                return !self.present[i];
            }
        }
        true
    }

    /// Checks the archive's own `manifest.json` against the choice made: a layer left out must be one the
    /// host has. The choice is made before the manifest (the last entry) is read.
    pub(crate) fn check_manifest(&self, manifest: &[u8]) -> Result<(), String> {
        let parsed: Vec<serde_json::Value> = serde_json::from_slice(manifest)
            .map_err(|e| format!("the image's manifest.json cannot be read: {e}"))?;
        for image in &parsed {
            let layers = image["Layers"].as_array().cloned().unwrap_or_default();
            if layers.len() != self.chains.len() {
                return Err(format!(
                    "the image's manifest lists {} layers, its config {}",
                    layers.len(),
                    self.chains.len()
                ));
            }
            for (i, layer) in layers.iter().enumerate() {
                let path = layer.as_str().unwrap_or_default();
                if !self.keeps(path) && !self.present[i] {
                    return Err(format!(
                        "layer {i} (`{path}`) was left out but the host lacks it"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Chain IDs of a stack of layers: the first is its diff ID, each next `sha256(<parent chain> <diff ID>)`.
pub(crate) fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => format!(
                "sha256:{}",
                hex::encode(Sha256::digest(format!("{parent} {d}")))
            ),
        };
        out.push(next);
    }
    out
}

/// The empty container config Docker's legacy image JSON carries for a layer below the top one.
const EMPTY_CONFIG: &str = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}"#;

/// The directories `docker save` (legacy layout) names every layer but the top one with: the SHA-256 of the
/// legacy image JSON that Docker derives from the layer's chain ID and its parent's directory. The top
/// layer's is derived from the whole image config and is told apart by elimination.
pub(crate) fn save_dirs(chains: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for chain in chains.iter().take(chains.len().saturating_sub(1)) {
        let parent = out
            .last()
            .map(|p| format!(r#","parent":"sha256:{p}""#))
            .unwrap_or_default();
        let json = format!(
            r#"{{"container_config":{EMPTY_CONFIG},"created":"1970-01-01T00:00:00Z","layer_id":"{chain}"{parent}}}"#
        );
        out.push(hex::encode(Sha256::digest(json)));
    }
    out
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Layer sizes, bottom first, from an image's history (`(size, created_by)` newest first): the entries with
/// content, when they are as many as the layers; else the image's size spread evenly.
pub(crate) fn layer_sizes(history: &[i64], layers: usize, image_size: i64) -> Vec<u64> {
    let with_content: Vec<u64> = history
        .iter()
        .rev()
        .filter(|s| **s > 0)
        .map(|s| s.unsigned_abs())
        .collect();
    if with_content.len() == layers {
        return with_content;
    }
    let each = image_size.unsigned_abs() / u64::try_from(layers.max(1)).unwrap_or(1);
    vec![each; layers]
}

impl Engine {
    /// The chain IDs of every layer of every image this engine holds.
    pub(crate) async fn layer_chains(&self) -> Result<HashSet<String>, EngineError> {
        let images = self
            .docker
            .list_images(Some(ListImagesOptionsBuilder::new().build()))
            .await
            .map_err(self.fail("listing images"))?;
        let inspected =
            futures_util::future::join_all(images.iter().map(|i| self.docker.inspect_image(&i.id)))
                .await;
        let mut chains = HashSet::new();
        // An image removed since the listing has no layers to count.
        for image in inspected.into_iter().flatten() {
            let layers = image.root_fs.and_then(|r| r.layers).unwrap_or_default();
            chains.extend(chain_ids(&layers));
        }
        Ok(chains)
    }

    /// `reference`'s layers and which of them are among `held`.
    async fn layer_plan(
        &self,
        reference: &str,
        held: &HashSet<String>,
    ) -> Result<LayerPlan, EngineError> {
        let image = self
            .docker
            .inspect_image(reference)
            .await
            .map_err(self.fail(format!("inspecting image `{reference}`")))?;
        let diff_ids = image.root_fs.and_then(|r| r.layers).unwrap_or_default();
        let history: Vec<i64> = self
            .docker
            .image_history(reference)
            .await
            .map(|h| h.into_iter().map(|i| i.size).collect())
            .unwrap_or_default();
        let sizes = layer_sizes(&history, diff_ids.len(), image.size.unwrap_or(0));
        Ok(LayerPlan::new(reference, diff_ids, held, sizes))
    }

    fn transfer_failed(&self, detail: String) -> EngineError {
        match self.lost() {
            Some(reason) => EngineError::Lost {
                host: self.host.clone(),
                action: "sending images".to_owned(),
                reason,
            },
            None => EngineError::Transfer {
                host: self.host.clone(),
                detail,
            },
        }
    }
}

type Chunk = Result<bytes::Bytes, std::io::Error>;

/// Streams one image: `docker save` from `from`, rewritten (all of it when `whole`), gzip, `docker load` on `to`.
/// Returns the compressed bytes sent.
async fn send(
    from: &Engine,
    to: &Engine,
    plan: Arc<LayerPlan>,
    whole: bool,
    tracked: Tracked,
) -> Result<u64, Failure> {
    let (save_tx, save_rx) = tokio::sync::mpsc::channel::<Chunk>(16);
    let (load_tx, load_rx) = tokio::sync::mpsc::channel::<Chunk>(16);
    let export = {
        let docker = from.docker.clone();
        let reference = plan.reference.clone();
        tokio::spawn(async move {
            let mut stream = docker.export_images(&[reference.as_str()]);
            while let Some(chunk) = stream.next().await {
                let item = chunk.map_err(std::io::Error::other);
                let failed = item.is_err();
                if save_tx.send(item).await.is_err() || failed {
                    break;
                }
            }
        })
    };
    let sent = Arc::new(AtomicU64::new(0));
    let rewrite = {
        let sent = sent.clone();
        let plan = plan.clone();
        tokio::task::spawn_blocking(move || {
            let writer = std::io::BufWriter::with_capacity(
                256 * 1024,
                ChannelWriter {
                    tx: load_tx.clone(),
                    sent,
                },
            );
            let result =
                rewrite_archive(ChannelReader::new(save_rx), writer, &plan, whole, &tracked);
            if let Err(e) = &result {
                // Ends the upload with an error, so the engine loads nothing from a broken archive.
                let _ = load_tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
            result
        })
    };
    let body = futures_util::stream::unfold(load_rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let opts = ImportImageOptionsBuilder::new().quiet(true).build();
    let mut load = to.docker.import_image_stream(opts, body, None);
    let mut refused = None;
    while let Some(item) = load.next().await {
        match item {
            Err(e) => {
                refused = Some(e.to_string());
                break;
            }
            Ok(info) => {
                if let Some(msg) = info.error_detail.and_then(|d| d.message) {
                    refused = Some(msg);
                    break;
                }
            }
        }
    }
    drop(load);
    let rewritten = rewrite.await;
    export.abort();
    let sent = sent.load(Ordering::Relaxed);
    let fail = |reason: String| Failure { sent, reason };
    match (refused, rewritten) {
        (None, Ok(Ok(()))) => Ok(sent),
        (_, Ok(Err(e))) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(fail(e.to_string())),
        (Some(reason), _) => Err(fail(reason)),
        (None, Ok(Err(e))) => Err(fail(e.to_string())),
        (None, Err(e)) => Err(fail(e.to_string())),
    }
}

/// Copies the entries of a `docker save` archive that `plan` keeps (every one when `whole`) into a gzip'd
/// tar on `out`, counting the layer content read.
fn rewrite_archive(
    input: impl Read,
    out: impl Write,
    plan: &LayerPlan,
    whole: bool,
    tracked: &Tracked,
) -> std::io::Result<()> {
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        if !whole && !plan.keeps(&path) {
            continue;
        }
        let mut header = entry.header().clone();
        if path.trim_start_matches("./") == "manifest.json" {
            let mut manifest = Vec::new();
            entry.read_to_end(&mut manifest)?;
            if !whole {
                plan.check_manifest(&manifest)
                    .map_err(std::io::Error::other)?;
            }
            builder.append_data(&mut header, &path, manifest.as_slice())?;
        } else {
            let counted = Counted {
                inner: &mut entry,
                tracked,
            };
            builder.append_data(&mut header, &path, counted)?;
        }
    }
    let mut gz = builder.into_inner()?;
    gz.flush()?;
    gz.finish()?.flush()
}

/// A reader that adds what it reads to the delivery's progress.
struct Counted<'a, R> {
    inner: R,
    tracked: &'a Tracked,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            let done = self
                .tracked
                .processed
                .fetch_add(n as u64, Ordering::Relaxed)
                + n as u64;
            (self.tracked.progress)(done, Some(self.tracked.total.max(done)));
        }
        Ok(n)
    }
}

/// The `docker save` stream, read on a blocking thread.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Chunk>,
    buf: bytes::Bytes,
}

impl ChannelReader {
    fn new(rx: tokio::sync::mpsc::Receiver<Chunk>) -> Self {
        Self {
            rx,
            buf: bytes::Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.buf = chunk?,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf.split_to(n));
        Ok(n)
    }
}

/// The upload to `docker load`, written on a blocking thread; counts the bytes sent.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Chunk>,
    sent: Arc<AtomicU64>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(bytes::Bytes::copy_from_slice(buf)))
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "the host's engine stopped reading",
                )
            })?;
        self.sent.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::{Delivered, LayerPlan, chain_ids, layer_sizes, save_dirs};

    fn ids() -> Vec<String> {
        [
            "sha256:e0c81f892c003b0539bd356b2da0db9f839a75a57bc87de3fa6ce90af76e9a06",
            "sha256:c5d1ded28d0fb6151519fb0996307f68c4fe7f4c21987ac837b89cf6d3e3753f",
            "sha256:f0217f15618ba4344e479fa83471199b200e63bc23dd8e996b901c52a65eb972",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn save_names_the_layers_below_the_top_as_docker_20_10_does() {
        // From `docker save` of the backend image on Docker 20.10.24 (its manifest.json's `Layers`).
        let chains = chain_ids(&ids());
        assert_eq!(chains[0], ids()[0]);
        assert_eq!(
            save_dirs(&chains),
            vec![
                "9397358d0c86cb8383edecb3cebc0e01af2e0e0a11be5a522fd6acf763d5ef0c",
                "854815ac1f001a1e1624319a4038c68fac294ca497782743de93467833c7c9d9",
            ]
        );
        assert_eq!(save_dirs(&chains[..1]), Vec::<String>::new());
    }

    fn plan(held: &[usize]) -> LayerPlan {
        let chains = chain_ids(&ids());
        let held: HashSet<String> = held.iter().map(|i| chains[*i].clone()).collect();
        LayerPlan::new("vl/x:1", ids(), &held, vec![10, 20, 30])
    }

    const BOTTOM: &str =
        "9397358d0c86cb8383edecb3cebc0e01af2e0e0a11be5a522fd6acf763d5ef0c/layer.tar";
    const MIDDLE: &str =
        "854815ac1f001a1e1624319a4038c68fac294ca497782743de93467833c7c9d9/layer.tar";
    const TOP: &str = "a84526c434320246ebad1b3b23dcb0ccec768e04ad541a04c60df90995211805/layer.tar";

    #[test]
    fn only_the_content_of_layers_the_host_has_is_left_out() {
        let table: [(&[usize], [bool; 3], u64); 4] = [
            (&[], [true, true, true], 60),
            (&[0], [false, true, true], 50),
            (&[0, 1], [false, false, true], 30),
            // A LABEL-only change: every layer is there, only the config and manifest go.
            (&[0, 1, 2], [false, false, false], 0),
        ];
        for (held, want, missing) in table {
            let p = plan(held);
            assert_eq!(
                [p.keeps(BOTTOM), p.keeps(MIDDLE), p.keeps(TOP)],
                want,
                "{held:?}"
            );
            assert_eq!(p.missing_bytes(), missing);
            for small in [
                "manifest.json",
                "repositories",
                "d3ff8f6adb2d073cebb746ddb65f21d9c384508f24f7bfeaffcd4a11e2961e38.json",
                &BOTTOM.replace("layer.tar", "json"),
                &TOP.replace("layer.tar", "VERSION"),
            ] {
                assert!(p.keeps(small), "{small} always goes");
            }
        }
    }

    #[test]
    fn oci_layout_blobs_named_by_diff_id_are_left_out_too() {
        let p = plan(&[0]);
        assert!(!p.keeps(&format!("blobs/sha256/{}", &ids()[0][7..])));
        assert!(p.keeps(&format!("blobs/sha256/{}", &ids()[1][7..])));
        assert!(p.keeps(
            "blobs/sha256/0000000000000000000000000000000000000000000000000000000000000000"
        ));
    }

    #[test]
    fn the_manifest_confirms_the_choice_or_the_archive_is_refused() {
        let manifest =
            format!(r#"[{{"Config":"c.json","Layers":["{BOTTOM}","{MIDDLE}","{TOP}"]}}]"#);
        assert_eq!(plan(&[0, 1]).check_manifest(manifest.as_bytes()), Ok(()));
        assert_eq!(plan(&[0, 1, 2]).check_manifest(manifest.as_bytes()), Ok(()));
        // Directories named otherwise than computed: the top layer is the one not computed, so a host that
        // lacks the top layer gets every unknown one.
        let odd = r#"[{"Config":"c.json","Layers":["1111111111111111111111111111111111111111111111111111111111111111/layer.tar","2222222222222222222222222222222222222222222222222222222222222222/layer.tar","3333333333333333333333333333333333333333333333333333333333333333/layer.tar"]}]"#;
        assert_eq!(plan(&[0, 1]).check_manifest(odd.as_bytes()), Ok(()));
        let short = format!(r#"[{{"Config":"c.json","Layers":["{BOTTOM}"]}}]"#);
        assert!(plan(&[0]).check_manifest(short.as_bytes()).is_err());
        assert!(plan(&[0]).check_manifest(b"not json").is_err());
    }

    #[test]
    fn layer_sizes_come_from_the_history_entries_with_content() {
        // Newest first, as the engine lists them; LABEL and ENV steps have no content.
        assert_eq!(layer_sizes(&[0, 0, 52, 52, 447], 3, 551), vec![447, 52, 52]);
        assert_eq!(layer_sizes(&[0, 90], 3, 90), vec![30, 30, 30]);
        assert_eq!(layer_sizes(&[], 0, 0), Vec::<u64>::new());
    }

    #[test]
    fn the_summary_says_what_was_sent() {
        let d = Delivered {
            sent: 1234,
            images: 1,
            layers_sent: 1,
            layers_present: 2,
            whole: vec![],
        };
        assert_eq!(
            d.summary(),
            "sent 1234 bytes (1 image: 1 layer sent, 2 already on the host)"
        );
    }
}
