//! Sandbox hosts that start with the stack's image layers: one local archive per run, loaded into each host.
//!
//! Sending the images over SSH costs about half a minute per sandbox host; tests about something else start with
//! the images already in the host's engine, under names of their own (`vl-warm/…`): `up` finds them by their
//! IDs and sends nothing, as it does for a host that has the images of another build of the same sources. A test
//! that builds another image (a release) still sends it, layer by layer. Tests of a cold transfer use
//! `Project::with_cold_sandbox_as`; a sandbox cluster (`Project::cluster_up`) always starts cold.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use super::project::Project;

/// The archive built in this run (`None` once building it failed: hosts then start cold).
static ARCHIVE: Mutex<Option<Option<PathBuf>>> = Mutex::new(None);

const SERVICES: [&str; 3] = ["postgres", "backend", "nginx"];

/// Loads the stack's image layers into `p`'s running sandbox host; builds the archive on first use.
pub fn preload(p: &Project) {
    let archive = {
        let mut slot = ARCHIVE.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert_with(|| build_archive(p)).clone()
    };
    let Some(archive) = archive else { return };
    load_into(&archive, &format!("vldeploy-sandbox-{}", p.name));
}

/// `docker load` of `archive` inside the host container `container`.
fn load_into(archive: &Path, container: &str) {
    let file = std::fs::File::open(archive).expect("the image archive");
    let out = Command::new("docker")
        .args(["exec", "-i", container, "docker", "load", "-q"])
        .stdin(file)
        .output()
        .expect("docker exec");
    assert!(
        out.status.success(),
        "loading {} into {container} failed: {}",
        archive.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds the stack's images through `vldeploy plan` in `p` and saves them, renamed, into one archive.
fn build_archive(p: &Project) -> Option<PathBuf> {
    // `plan` builds every image before it reads the host; its exit status says nothing about the build.
    let _ = p
        .command(&["plan"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let mut ids = Vec::new();
    let mut names = Vec::new();
    for service in SERVICES {
        let repo = format!("vl/{}-{service}", p.name);
        let listed = docker(&["images", "--format", "{{.Tag}} {{.ID}}", &repo])?;
        let (tag, id) = listed.lines().next()?.split_once(' ')?;
        let warm = format!("vl-warm/{service}:{tag}");
        docker(&["tag", &format!("{repo}:{tag}"), &warm])?;
        ids.push(id.to_owned());
        names.push(warm);
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("warm-images-{}.tar", ids.join("-")));
    if !path.exists() {
        let partial = path.with_extension("tar.partial");
        let mut args = vec!["save", "-o"];
        let partial_arg = partial.display().to_string();
        args.push(&partial_arg);
        args.extend(names.iter().map(String::as_str));
        docker(&args)?;
        std::fs::rename(&partial, &path).ok()?;
        // Archives of earlier sources are of no further use.
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("warm-images-") && entry.path() != path {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Some(path)
}

fn docker(args: &[&str]) -> Option<String> {
    let out = Command::new("docker").args(args).output().ok()?;
    if !out.status.success() {
        eprintln!(
            "warm sandbox images: `docker {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}
