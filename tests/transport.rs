//! The transport against a real OpenSSH server and the real Docker engine: commands, uploads, streams,
//! the Docker tunnel, and every way connecting can be refused.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::sshd::{Sshd, keygen, keygen_fingerprint};
use crate::support::test::assert_text;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use vldeploy::remote::raw;
use vldeploy::transport::{ALIVE_TIMEOUT, Auth, HostKeys, Remote, Target, TransportError};

const TIMEOUT: Duration = Duration::from_secs(30);

fn connect_err(sshd: &Sshd, auth: &Auth, keys: &HostKeys) -> TransportError {
    match Remote::connect(&sshd.target(), auth, keys, TIMEOUT) {
        Ok(_) => panic!("connecting should have failed"),
        Err(e) => e,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_reports_status_stdout_and_stderr() {
    let sshd = Sshd::start();
    let remote = sshd.connect();
    assert_eq!(remote.name(), format!("root@127.0.0.1:{}", sshd.port));

    let out = remote
        .exec(&raw("echo out; echo err >&2; exit 3"))
        .await
        .expect("exec");
    assert_eq!(out.status, 3);
    assert_eq!(out.stdout_str(), "out\n");
    assert_eq!(out.stderr_tail(5), "err");

    let out = remote.exec(&raw("id -u")).await.expect("exec");
    assert!(out.success());
    assert_eq!(out.stdout_str().trim(), "0");

    let killed = remote.exec(&raw("kill -TERM $$")).await.expect("exec");
    assert_eq!(
        killed.status,
        128 + 15,
        "a signal death reports 128 + signal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_reaches_the_command() {
    let sshd = Sshd::start();
    let remote = sshd.connect();
    let input: Vec<u8> = (0..300_000u32).flat_map(u32::to_le_bytes).collect();
    let out = remote
        .exec_stdin(&raw("sha256sum"), input.clone())
        .await
        .expect("exec");
    let expected = hex::encode(Sha256::digest(&input));
    assert_eq!(
        out.stdout_str().split_whitespace().next(),
        Some(expected.as_str())
    );

    // A command that ignores its stdin still finishes, whatever is left unread.
    let out = remote
        .exec_stdin(&raw("exit 0"), vec![7; 5_000_000])
        .await
        .expect("exec");
    assert_eq!(out.status, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_fails_naming_host_command_and_stderr() {
    let sshd = Sshd::start();
    let remote = sshd.connect();
    let err = remote
        .run(&raw(
            "for i in $(seq 1 40); do echo line$i >&2; done; exit 4",
        ))
        .await
        .expect_err("non-zero exit is an error");
    let text = err.to_string();
    assert!(
        matches!(err, TransportError::Command { status: 4, .. }),
        "{err:?}"
    );
    // The host, the command, and only the last 20 lines of its stderr.
    let tail: String = (21..=40).map(|i| format!("\n  | line{i}")).collect();
    assert_text(
        &text,
        &format!(
            "command failed on `root@127.0.0.1:{}` with exit status 4: \
             `for i in $(seq 1 40); do echo line$i >&2; done; exit 4`\n  stderr (last lines):{tail}",
            sshd.port
        ),
    );
    assert!(remote.run(&raw("true")).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_commands_share_one_session() {
    let sshd = Sshd::start();
    let remote = Arc::new(sshd.connect());
    let mut tasks = Vec::new();
    for i in 0..100 {
        let remote = Arc::clone(&remote);
        tasks.push(tokio::spawn(async move {
            let out = remote
                .exec(&raw(format!(
                    "echo out-{i}; echo err-{i} >&2; exit {}",
                    i % 7
                )))
                .await
                .expect("exec");
            (i, out)
        }));
    }
    for task in tasks {
        let (i, out) = task.await.expect("task");
        assert_eq!(out.status, i % 7);
        assert_eq!(out.stdout_str(), format!("out-{i}\n"));
        // The login shell's startup files may print to stderr too: the command's own line comes last.
        assert!(
            String::from_utf8_lossy(&out.stderr).ends_with(&format!("err-{i}\n")),
            "{out:?}"
        );
    }
    let sessions = sshd.log().matches("Accepted publickey").count();
    assert_eq!(sessions, 1, "all commands ran over one ssh connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_allowing_few_sessions_still_runs_every_command() {
    let sshd = Sshd::start_with("MaxSessions 3");
    let remote = Arc::new(sshd.connect());
    let mut tasks = Vec::new();
    for i in 0..30 {
        let remote = Arc::clone(&remote);
        tasks.push(tokio::spawn(async move {
            remote.run(&raw(format!("sleep 0.05; echo {i}"))).await
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let out = task.await.expect("task").expect("every command runs");
        assert_eq!(out.stdout_str(), format!("{i}\n"));
    }
    // The server did refuse sessions beyond its limit, and those commands were retried.
    assert!(sshd.log().contains("no more sessions"), "{}", sshd.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_fails_commands_instead_of_hanging() {
    let sshd = Sshd::start();
    let remote = Arc::new(sshd.connect());
    assert!(remote.run(&raw("true")).await.is_ok());
    let running = {
        let remote = Arc::clone(&remote);
        tokio::spawn(async move { remote.exec(&raw("sleep 60")).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    sshd.kill_connections();
    let err = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the command fails promptly")
        .expect("task")
        .expect_err("the connection is gone");
    assert!(
        matches!(err, TransportError::Disconnected { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "connection to `root@127.0.0.1:{}` lost",
            sshd.port
        )),
        "{err}"
    );
    let later = remote.exec(&raw("true")).await.expect_err("still gone");
    assert!(
        matches!(later, TransportError::Disconnected { .. }),
        "{later:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_stops_answering_fails_commands_within_the_alive_timeout() {
    let sshd = Sshd::start();
    let remote = Arc::new(sshd.connect());
    assert!(remote.run(&raw("true")).await.is_ok());
    let running = {
        let remote = Arc::clone(&remote);
        tokio::spawn(async move { remote.exec(&raw("sleep 120")).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // No FIN, no RST, nothing: the host is gone as far as this side can tell.
    let _silence = sshd.stop_answering();
    let started = Instant::now();
    let err = tokio::time::timeout(ALIVE_TIMEOUT + Duration::from_secs(15), running)
        .await
        .expect(
            "the command fails within the alive timeout, not when the kernel gives up (minutes)",
        )
        .expect("task")
        .expect_err("the connection is gone");
    let took = started.elapsed();
    eprintln!("timing: lost after {:.1} s of silence", took.as_secs_f64());
    assert!(
        matches!(err, TransportError::Disconnected { .. }),
        "{err:?}"
    );
    // The silence it names is measured from the last byte that moved, a moment before the filter went in.
    let text = err.to_string();
    let (head, rest) = text
        .split_once(" nothing came back for ")
        .unwrap_or_else(|| panic!("{text}"));
    let (seconds, tail) = rest.split_once('s').unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        head,
        format!(
            "connection to `root@127.0.0.1:{}` lost: the host stopped answering:",
            sshd.port
        )
    );
    let seconds: u64 = seconds.parse().unwrap_or_else(|_| panic!("{text}"));
    assert!(
        (ALIVE_TIMEOUT.as_secs() - 2..=took.as_secs() + 2).contains(&seconds),
        "{text}"
    );
    assert_eq!(
        tail,
        " (it may be down, or the network to it cut)\nhelp: the host may have rebooted or sshd restarted; \
         run the command again"
    );
    let reason = remote.link().lost().expect("the link records why");
    assert!(reason.starts_with("the host stopped answering"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_remote_does_not_wait_for_running_commands() {
    let sshd = Sshd::start();
    let remote = sshd.connect();
    // Seven commands that run on (a slow shutdown would wait about 1 s for each); one slot stays free.
    let mut streams = Vec::new();
    for _ in 0..7 {
        streams.push(
            remote
                .exec_stream(&raw("sleep 120"), None)
                .await
                .expect("stream"),
        );
    }
    assert!(remote.run(&raw("true")).await.is_ok());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    drop(remote);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "drop took {took:?}");
    for stream in streams {
        let err = stream.finish().await.expect_err("the connection is gone");
        assert!(
            matches!(err, TransportError::Disconnected { .. }),
            "{err:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_then_read_back_with_mode() {
    let sshd = Sshd::start();
    let remote = sshd.connect();
    let base = sshd.dir.path().join("upload");
    let path = format!("{}/new dir/it's/app.conf", base.display());
    let contents = b"listen 80;\n$HOME `id`\n".repeat(1000);

    remote
        .upload(&path, &contents, 0o640)
        .await
        .expect("upload");
    assert_eq!(
        remote.read_file(&path).await.expect("read"),
        Some(contents.clone())
    );
    assert_eq!(fs::read(&path).expect("file exists locally too"), contents);
    let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o7777;
    assert_eq!(mode, 0o640);

    remote
        .upload(&path, b"second", 0o600)
        .await
        .expect("overwrite");
    assert_eq!(
        remote.read_file(&path).await.expect("read"),
        Some(b"second".to_vec())
    );
    let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600);

    remote
        .upload(&path, b"", 0o644)
        .await
        .expect("empty upload");
    assert_eq!(
        remote.read_file(&path).await.expect("read"),
        Some(Vec::new())
    );

    let missing = format!("{}/nothing-here", base.display());
    assert_eq!(remote.read_file(&missing).await.expect("read"), None);
    let dir_err = remote
        .read_file(&base.display().to_string())
        .await
        .expect_err("a directory");
    assert!(
        matches!(dir_err, TransportError::Command { .. }),
        "{dir_err:?}"
    );
}

fn leftovers(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).expect("read dir") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.contains("vldeploy-tmp") {
            found.push(name);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_atomic_and_leave_no_temporary_file() {
    let sshd = Sshd::start();
    let remote = Arc::new(sshd.connect());
    let dir = sshd.dir.path().join("atomic");
    fs::create_dir_all(&dir).expect("mkdir");
    let path = format!("{}/state.json", dir.display());
    let a = vec![b'a'; 1 << 20];
    let b = vec![b'b'; 1 << 20];
    remote.upload(&path, &a, 0o600).await.expect("first upload");

    // Writers alternate two versions while readers read: every read sees one whole version.
    let writer = {
        let (remote, path, a, b) = (Arc::clone(&remote), path.clone(), a.clone(), b.clone());
        tokio::spawn(async move {
            for i in 0..20 {
                let data = if i % 2 == 0 { &b } else { &a };
                remote.upload(&path, data, 0o600).await.expect("upload");
            }
        })
    };
    let mut reads = 0;
    while !writer.is_finished() || reads < 5 {
        let got = remote
            .read_file(&path)
            .await
            .expect("read")
            .expect("present");
        assert!(
            got == a || got == b,
            "a read saw a partial file of {} bytes",
            got.len()
        );
        reads += 1;
    }
    writer.await.expect("writer");
    assert!(leftovers(&dir).is_empty(), "left: {:?}", leftovers(&dir));

    // A path under a regular file fails cleanly.
    let blocker = dir.join("blocker");
    fs::write(&blocker, "x").expect("write");
    let err = remote
        .upload(&format!("{}/child", blocker.display()), b"data", 0o600)
        .await
        .expect_err("parent is a file");
    assert!(matches!(err, TransportError::Command { .. }), "{err:?}");
    // A failed rename (a directory sits at the path) removes the temporary file it had written.
    fs::create_dir(dir.join("occupied")).expect("mkdir");
    let err = remote
        .upload(&format!("{}/occupied", dir.display()), b"data", 0o600)
        .await
        .expect_err("cannot replace a directory");
    assert!(err.to_string().contains("mv"), "{err}");
    assert!(leftovers(&dir).is_empty(), "left: {:?}", leftovers(&dir));
    assert!(leftovers(&dir.join("occupied")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_stream_arrives_intact() {
    const MB: usize = 1 << 20;
    let sshd = Sshd::start();
    let remote = sshd.connect();

    // 200 chunks of a little under 1 MiB, each a different slice of one random-looking buffer.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let base: Vec<u8> = (0..MB + 4096)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed.to_le_bytes()[3]
        })
        .collect();
    let base = Bytes::from(base);
    let chunks: Vec<Bytes> = (0..200)
        .map(|i| base.slice(i * 17..MB - 1000 + i * 3))
        .collect();
    let total: usize = chunks.iter().map(Bytes::len).sum();
    let mut hasher = Sha256::new();
    for chunk in &chunks {
        hasher.update(chunk);
    }
    let expected = hex::encode(hasher.finalize());

    let (tx, rx) = mpsc::channel(8);
    let started = Instant::now();
    let stream = remote
        .exec_stream(&raw("sha256sum"), Some(rx))
        .await
        .expect("exec_stream");
    let feeder = tokio::spawn(async move {
        for chunk in chunks {
            tx.send(chunk).await.expect("the command takes stdin");
        }
    });
    let (mut stdout, end) = stream.split();
    let mut out = Vec::new();
    while let Some(chunk) = stdout.recv().await {
        out.extend_from_slice(&chunk);
    }
    let status = end.success().await.expect("sha256sum succeeds");
    let elapsed = started.elapsed();
    feeder.await.expect("feeder");
    assert_eq!(status.status, 0);
    let got = String::from_utf8(out).expect("utf-8");
    assert_eq!(got.split_whitespace().next(), Some(expected.as_str()));
    #[allow(clippy::cast_precision_loss)]
    let rate = total as f64 / MB as f64 / elapsed.as_secs_f64();
    eprintln!(
        "streamed {} MiB into sha256sum in {:.2}s: {rate:.1} MiB/s",
        total / MB,
        elapsed.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_stdout_arrives_in_order_and_a_dropped_stream_stops_the_command() {
    let sshd = Sshd::start();
    let remote = sshd.connect();

    let stream = remote
        .exec_stream(&raw("seq 1 300000; echo done >&2"), None)
        .await
        .expect("exec_stream");
    let (mut stdout, end) = stream.split();
    let mut out = Vec::new();
    while let Some(chunk) = stdout.recv().await {
        out.extend_from_slice(&chunk);
        if out.len() < 100_000 {
            tokio::time::sleep(Duration::from_millis(1)).await; // a slow reader at first
        }
    }
    let status = end.wait().await.expect("wait");
    assert_eq!(status.status, 0);
    assert_eq!(status.stderr_tail, b"done\n");
    let expected = (1..=300_000).fold(String::new(), |mut s, i| {
        s.push_str(&i.to_string());
        s.push('\n');
        s
    });
    assert!(
        out == expected.as_bytes(),
        "stdout differs ({} bytes)",
        out.len()
    );

    let failing = remote
        .exec_stream(&raw("echo oops >&2; exit 9"), None)
        .await
        .expect("exec_stream");
    let err = failing.success().await.expect_err("exit 9");
    assert!(err.to_string().contains("oops"), "{err}");

    let marker = format!("vldeploy-yes-{}", std::process::id());
    let mut endless = remote
        .exec_stream(&raw(format!("yes {marker}")), None)
        .await
        .expect("exec_stream");
    let first = endless.stdout.recv().await.expect("some output");
    assert!(first.starts_with(marker.as_bytes()));
    drop(endless);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = remote
            .exec(&raw(format!("pgrep -f 'yes {marker}'")))
            .await
            .expect("pgrep");
        if out.status == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "`yes` still runs after its stream was dropped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A Docker client on the remote's engine endpoint (the tunnel socket), its API version negotiated.
async fn docker(remote: &Remote) -> Result<bollard::Docker, TransportError> {
    let endpoint = remote.docker_endpoint().await?;
    let path = endpoint.local_path().to_string_lossy().into_owned();
    let docker = bollard::Docker::connect_with_unix(&path, 120, bollard::API_DEFAULT_VERSION)
        .map_err(|e| endpoint.unusable(&e.to_string()))?;
    docker
        .negotiate_version()
        .await
        .map_err(|e| endpoint.silent(&e.to_string()))
}

fn local_api_version() -> String {
    let out = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .output()
        .expect("docker cli runs");
    assert!(
        out.status.success(),
        "docker version: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_answers_through_the_tunnel() {
    let sshd = Sshd::start();
    let remote = sshd.connect();
    let docker = docker(&remote).await.expect("docker through the tunnel");
    let version = docker.version().await.expect("version");
    assert_eq!(
        version.api_version.as_deref(),
        Some(local_api_version().as_str())
    );
    docker.list_containers(None).await.expect("list containers");

    let dir = remote.tunnel_dir().expect("a tunnel dir").to_path_buf();
    let mode = fs::metadata(&dir).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);

    let mut requests = Vec::new();
    for i in 0..12 {
        let docker = docker.clone();
        requests.push(tokio::spawn(async move {
            match i % 3 {
                0 => docker
                    .version()
                    .await
                    .map(|v| v.api_version.unwrap_or_default()),
                1 => docker
                    .list_images(None::<bollard::query_parameters::ListImagesOptions>)
                    .await
                    .map(|l| l.len().to_string()),
                _ => docker.ping().await,
            }
        }));
    }
    for request in requests {
        let answer = request.await.expect("task").expect("docker request");
        assert!(!answer.is_empty());
    }
    // Exec and docker share the session.
    assert_eq!(
        remote
            .run(&raw("echo still"))
            .await
            .expect("exec")
            .stdout_str(),
        "still\n"
    );

    drop(docker);
    drop(remote);
    assert!(!dir.exists(), "the tunnel dir is removed with the Remote");
}

/// Removes a test image from the local engine, also when the test fails.
struct ImageGuard(String);

impl Drop for ImageGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rmi", "-f", &self.0])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_docker_bodies_cross_the_tunnel_both_ways() {
    use futures_util::StreamExt as _;

    let sshd = Sshd::start();
    let remote = sshd.connect();
    let docker = docker(&remote).await.expect("docker");

    // An 8 MiB root filesystem goes up as a request body...
    let rootfs = sshd.dir.path().join("rootfs");
    fs::create_dir(&rootfs).expect("mkdir");
    let blob: Vec<u8> = (0..8u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes()[0])
        .collect();
    fs::write(rootfs.join("blob"), &blob).expect("write blob");
    let tar = std::process::Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["-cf", "-", "."])
        .output()
        .expect("tar");
    assert!(tar.status.success());
    let name = format!("vldeploy-transport-test:{}", std::process::id());
    let _guard = ImageGuard(name.clone());
    let options = bollard::query_parameters::CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo("vldeploy-transport-test")
        .tag(&std::process::id().to_string())
        .build();
    let mut progress = docker.create_image(
        Some(options),
        Some(bollard::body_full(Bytes::from(tar.stdout))),
        None,
    );
    while let Some(step) = progress.next().await {
        step.expect("import step");
    }

    // ...and comes back as a streamed response, byte for byte what the local engine saves.
    let mut exported = Sha256::new();
    let mut size = 0usize;
    let mut stream = docker.export_image(&name);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("export chunk");
        size += chunk.len();
        exported.update(&chunk);
    }
    assert!(size > 8 << 20, "exported {size} bytes");
    let saved = std::process::Command::new("docker")
        .args(["save", &name])
        .output()
        .expect("docker save");
    assert!(saved.status.success());
    assert_eq!(
        hex::encode(exported.finalize()),
        hex::encode(Sha256::digest(&saved.stdout))
    );

    docker
        .remove_image(
            &name,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await
        .expect("remove image");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_and_docker_keep_moving_during_a_bulk_stream() {
    let sshd = Sshd::start();
    let remote = Arc::new(sshd.connect());
    let docker = docker(&remote).await.expect("docker");

    // 64 MiB of stdin keeps the socket busy while other channels come and go.
    let chunk = Bytes::from(
        (0..1u32 << 20)
            .map(|i| i.to_le_bytes()[1])
            .collect::<Vec<u8>>(),
    );
    let mut hasher = Sha256::new();
    for _ in 0..64 {
        hasher.update(&chunk);
    }
    let expected = hex::encode(hasher.finalize());
    let (tx, rx) = mpsc::channel(4);
    let stream = remote
        .exec_stream(&raw("sha256sum"), Some(rx))
        .await
        .expect("stream");
    let feeder = tokio::spawn(async move {
        for _ in 0..64 {
            tx.send(chunk.clone()).await.expect("send");
        }
    });

    let mut others = Vec::new();
    for i in 0..20 {
        let remote = Arc::clone(&remote);
        let docker = docker.clone();
        others.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let out = remote
                    .run(&raw(format!("echo {i}")))
                    .await
                    .expect("exec during the stream");
                assert_eq!(out.stdout_str(), format!("{i}\n"));
            } else {
                docker.ping().await.expect("docker during the stream");
            }
        }));
    }
    for other in others {
        tokio::time::timeout(Duration::from_secs(120), other)
            .await
            .expect("no starvation")
            .expect("task");
    }
    feeder.await.expect("feeder");
    let (mut stdout, end) = stream.split();
    let mut out = Vec::new();
    while let Some(c) = stdout.recv().await {
        out.extend_from_slice(&c);
    }
    end.success().await.expect("sha256sum");
    assert_eq!(
        String::from_utf8_lossy(&out).split_whitespace().next(),
        Some(expected.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_docker_socket_is_reported() {
    let sshd = Sshd::start();
    let remote = sshd.connect();
    let err = remote
        .docker_endpoint_at("/var/run/vldeploy-no-such.sock")
        .await
        .expect_err("no engine");
    let text = err.to_string();
    assert!(matches!(err, TransportError::NoDocker { .. }), "{err:?}");
    assert!(
        text.starts_with(&format!(
            "no Docker engine on `root@127.0.0.1:{}`: /var/run/vldeploy-no-such.sock",
            sshd.port
        )),
        "{text}"
    );
    assert!(text.contains("apt-get install docker.io"), "{text}");
    // The session survives.
    assert!(remote.run(&raw("true")).await.is_ok());

    let strict = Sshd::start_with("AllowStreamLocalForwarding no");
    let err = strict
        .connect()
        .docker_endpoint()
        .await
        .expect_err("forwarding forbidden");
    assert!(matches!(err, TransportError::NoDocker { .. }), "{err:?}");
    assert!(
        err.to_string().contains("AllowStreamLocalForwarding"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_host_key_is_refused_with_its_fingerprint() {
    let sshd = Sshd::start();
    let empty = sshd.dir.path().join("empty_known_hosts");
    fs::write(
        &empty,
        format!("# nothing yet\n127.0.0.1 {}\n", sshd.host_public_key),
    )
    .expect("write");
    let err = connect_err(&sshd, &sshd.auth(), &HostKeys::KnownHosts(empty.clone()));
    let text = err.to_string();
    assert!(
        matches!(err, TransportError::UnknownHostKey { .. }),
        "{err:?}"
    );
    // The offered key, the command that trusts it, and the pin that would.
    assert_text(
        &text,
        &format!(
            "refusing to connect to `root@127.0.0.1:{port}`: its host key is not known. It offered ssh-ed25519 \
             key {fp}, which `{known}` does not list for `[127.0.0.1]:{port}`.\n\
             help: if this is your host, trust it with `ssh-keyscan -p {port} 127.0.0.1 >> {known}` (and compare \
             `ssh-keygen -lf {known}` with the fingerprint above), or pin it in stack.yaml with `host_key: {fp}`",
            port = sshd.port,
            fp = sshd.host_fingerprint,
            known = empty.display(),
        ),
    );

    // A missing known_hosts file is the same refusal.
    let none = sshd.dir.path().join("no_such_known_hosts");
    let err = connect_err(&sshd, &sshd.auth(), &HostKeys::KnownHosts(none));
    assert!(
        matches!(err, TransportError::UnknownHostKey { .. }),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_host_key_is_refused_loudly() {
    let sshd = Sshd::start();
    let other = sshd.dir.path().join("other_host_key");
    keygen(&other, "old-host");
    let old_pub = fs::read_to_string(other.with_extension("pub")).expect("read");
    let old_key: Vec<&str> = old_pub.split_whitespace().take(2).collect();
    let known = sshd.dir.path().join("changed_known_hosts");
    fs::write(
        &known,
        format!(
            "# old entry\n[127.0.0.1]:{} {}\n",
            sshd.port,
            old_key.join(" ")
        ),
    )
    .expect("write");

    let err = connect_err(&sshd, &sshd.auth(), &HostKeys::KnownHosts(known.clone()));
    let text = err.to_string();
    assert!(
        matches!(err, TransportError::HostKeyChanged { line: 2, .. }),
        "{err:?}"
    );
    // The expected key, the offered key, and how to remove the old entry.
    assert_text(
        &text,
        &format!(
            "HOST KEY CHANGED for `root@127.0.0.1:{port}`: refusing to connect, this could be a \
             man-in-the-middle attack. `{known}` line 2 expects ssh-ed25519 key {old}, but the host offered \
             ssh-ed25519 key {fp}.\n\
             help: only if you know the host was reinstalled or its keys were rotated, remove the old entry \
             (line 2) with `ssh-keygen -R '[127.0.0.1]:{port}' -f {known}` and trust the new key",
            port = sshd.port,
            known = known.display(),
            old = keygen_fingerprint(&other.with_extension("pub")),
            fp = sshd.host_fingerprint,
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_known_hosts_entries_are_trusted() {
    let sshd = Sshd::start();
    let hashed = sshd.dir.path().join("hashed_known_hosts");
    fs::copy(&sshd.known_hosts, &hashed).expect("copy");
    let status = std::process::Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&hashed)
        .output()
        .expect("ssh-keygen -H");
    assert!(status.status.success());
    let text = fs::read_to_string(&hashed).expect("read");
    assert!(text.starts_with("|1|"), "hashed: {text}");
    assert!(!text.contains("127.0.0.1"));

    let remote = Remote::connect(
        &sshd.target(),
        &sshd.auth(),
        &HostKeys::KnownHosts(hashed),
        TIMEOUT,
    )
    .expect("a hashed entry is trusted");
    assert_eq!(
        remote
            .run(&raw("echo hi"))
            .await
            .expect("exec")
            .stdout_str(),
        "hi\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_fingerprints_are_checked() {
    let sshd = Sshd::start();
    let pinned = HostKeys::Pinned(sshd.host_fingerprint.clone());
    let remote = Remote::connect(&sshd.target(), &sshd.auth(), &pinned, TIMEOUT)
        .expect("pinned key matches");
    assert!(remote.run(&raw("true")).await.is_ok());

    let other = sshd.dir.path().join("pin_other");
    keygen(&other, "other");
    let wrong = keygen_fingerprint(&other.with_extension("pub"));
    let err = connect_err(&sshd, &sshd.auth(), &HostKeys::Pinned(wrong.clone()));
    let text = err.to_string();
    assert!(
        matches!(err, TransportError::PinnedKeyMismatch { .. }),
        "{err:?}"
    );
    assert!(
        text.contains(&wrong) && text.contains(&sshd.host_fingerprint),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_problems_are_explained() {
    let sshd = Sshd::start();
    let err = connect_err(
        &sshd,
        &Auth::Key("~/.ssh/vldeploy-nope".into()),
        &sshd.host_keys(),
    );
    assert_eq!(
        err.to_string().lines().next(),
        Some("ssh key `~/.ssh/vldeploy-nope` not found")
    );

    let stranger = sshd.dir.path().join("stranger");
    keygen(&stranger, "stranger");
    let err = connect_err(&sshd, &Auth::Key(stranger.clone()), &sshd.host_keys());
    let text = err.to_string();
    assert!(matches!(err, TransportError::KeyRefused { .. }), "{err:?}");
    let (first, help) = text.split_once('\n').unwrap_or((&text, ""));
    assert!(
        first.starts_with(&format!(
            "`root@127.0.0.1:{}` refused ssh key `{}` for user `root`: ",
            sshd.port,
            stranger.display()
        )),
        "{text}"
    );
    assert_text(
        help,
        &format!(
            "help: add the public key (`{key}.pub`) to `~root/.ssh/authorized_keys` on the host, for example \
             with `ssh-copy-id -i {key} root@<host>`",
            key = stranger.display()
        ),
    );

    let garbage = sshd.dir.path().join("garbage_key");
    fs::write(&garbage, "not a key\n").expect("write");
    let err = connect_err(&sshd, &Auth::Key(garbage), &sshd.host_keys());
    assert!(
        matches!(
            err,
            TransportError::KeyUnreadable { .. } | TransportError::KeyRefused { .. }
        ),
        "{err:?}"
    );

    // The agent cannot help: none is running here, or it holds no key the server accepts.
    let err = connect_err(&sshd, &Auth::Agent, &sshd.host_keys());
    assert!(
        matches!(
            err,
            TransportError::AgentUnavailable { .. } | TransportError::AgentRefused { .. }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("agent"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_unreachable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let target = Target {
        user: "root".to_owned(),
        host: "127.0.0.1".to_owned(),
        port,
    };
    let err = Remote::connect(
        &target,
        &Auth::Agent,
        &HostKeys::Pinned("SHA256:x".to_owned()),
        TIMEOUT,
    )
    .expect_err("nothing listens");
    assert_text(
        &err.to_string(),
        &format!(
            "cannot reach `root@127.0.0.1:{port}`: connection refused\n\
             help: check that the host is up, that sshd listens on port {port} and that no firewall drops the \
             connection"
        ),
    );
}

#[test]
fn a_silent_or_foreign_server_is_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let target = Target {
        user: "root".to_owned(),
        host: "127.0.0.1".to_owned(),
        port,
    };
    let keys = HostKeys::Pinned("SHA256:x".to_owned());
    let server = std::thread::spawn(move || {
        use std::io::Write as _;
        // First client: accept and say nothing. Second: answer like a web server.
        let (silent, _) = listener.accept().expect("accept");
        let (mut web, _) = listener.accept().expect("accept");
        let _ = web.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        std::thread::sleep(Duration::from_secs(1));
        drop((silent, web));
    });
    let err =
        Remote::connect(&target, &Auth::Agent, &keys, Duration::from_secs(2)).expect_err("silent");
    assert!(matches!(err, TransportError::Unreachable { .. }), "{err:?}");
    assert!(
        err.to_string().contains("no ssh handshake within 2s"),
        "{err}"
    );
    let err = Remote::connect(&target, &Auth::Agent, &keys, Duration::from_secs(10))
        .expect_err("not ssh");
    assert!(
        matches!(
            err,
            TransportError::Handshake { .. } | TransportError::Unreachable { .. }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&format!("`root@127.0.0.1:{port}`")),
        "{err}"
    );
    server.join().expect("server thread");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_remote_offers_the_same_api() {
    let remote = Remote::local();
    let out = remote
        .exec_stdin(&raw("cat; echo e >&2; exit 2"), b"in".to_vec())
        .await
        .expect("exec");
    assert_eq!(
        (out.status, out.stdout.as_slice(), out.stderr.as_slice()),
        (2, &b"in"[..], &b"e\n"[..])
    );
    let err = remote
        .run(&raw("echo bad >&2; false"))
        .await
        .expect_err("false fails");
    assert!(
        err.to_string()
            .starts_with("command failed on `local` with exit status 1: `echo bad >&2; false`")
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let path = format!("{}/a/b/file", dir.path().display());
    remote.upload(&path, b"hello", 0o604).await.expect("upload");
    assert_eq!(
        remote.read_file(&path).await.expect("read"),
        Some(b"hello".to_vec())
    );
    assert_eq!(
        fs::metadata(&path).expect("stat").permissions().mode() & 0o7777,
        0o604
    );
    assert_eq!(
        remote
            .read_file(&format!("{path}.missing"))
            .await
            .expect("read"),
        None
    );

    let (tx, rx) = mpsc::channel(4);
    let stream = remote
        .exec_stream(&raw("wc -c"), Some(rx))
        .await
        .expect("stream");
    for _ in 0..10 {
        tx.send(Bytes::from(vec![1u8; 100_000]))
            .await
            .expect("send");
    }
    drop(tx);
    let (mut stdout, end) = stream.split();
    let mut out = Vec::new();
    while let Some(chunk) = stdout.recv().await {
        out.extend_from_slice(&chunk);
    }
    assert_eq!(String::from_utf8_lossy(&out).trim(), "1000000");
    assert_eq!(end.success().await.expect("wc").status, 0);

    let docker = docker(&remote).await.expect("local docker");
    let version = docker.version().await.expect("version");
    assert_eq!(
        version.api_version.as_deref(),
        Some(local_api_version().as_str())
    );
    let err = remote
        .docker_endpoint_at("/nonexistent/docker.sock")
        .await
        .expect_err("missing");
    assert!(
        err.to_string().starts_with("no Docker engine on `local`"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_and_reads_on_one_connection_each_get_their_own_bytes() {
    let sshd = Sshd::start();
    let remote = Arc::new(sshd.connect());
    let base = sshd.dir.path().join("many");
    let mut tasks = Vec::new();
    for i in 0..60 {
        let remote = Arc::clone(&remote);
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let path = format!("{}/f-{i}", base.display());
            let missing = format!("{}/missing-{i}", base.display());
            let contents = format!("{i:064x}");
            let (up, gone) = tokio::join!(
                remote.upload(&path, contents.as_bytes(), 0o600),
                remote.read_file(&missing)
            );
            up.expect("upload");
            assert_eq!(gone.expect("read of a missing file"), None, "task {i}");
            assert_eq!(
                remote.read_file(&path).await.expect("read"),
                Some(contents.into_bytes()),
                "task {i}"
            );
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
}

/// A command's exit status comes after the end of its output; with other channels busy, the next packet after
/// that end is often another channel's. Every quiet command here must still report its own status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_command_beside_busy_channels_reports_its_own_exit_status() {
    let sshd = Sshd::start();
    let remote = Arc::new(sshd.connect());
    let mut tasks = Vec::new();
    for i in 0..120 {
        let remote = Arc::clone(&remote);
        tasks.push(tokio::spawn(async move {
            if i % 3 == 0 {
                // A busy neighbour: output in many packets, then success.
                let out = remote
                    .exec(&raw("head -c 400000 /dev/zero | tr '\\0' x"))
                    .await
                    .expect("busy command");
                assert_eq!((out.status, out.stdout.len()), (0, 400_000), "task {i}");
            } else {
                // Its output ends (both streams closed) a moment before it exits.
                let status = 1 + (i % 7);
                let out = remote
                    .exec(&raw(&format!(
                        "exec >/dev/null 2>&1 </dev/null; sleep 0.1; exit {status}"
                    )))
                    .await
                    .expect("quiet command");
                assert_eq!(
                    (out.status, out.stdout.len()),
                    (i32::try_from(status).unwrap(), 0),
                    "task {i}: the status of `exit {status}` after the output ended"
                );
            }
        }));
    }
    let mut failed = Vec::new();
    for task in tasks {
        if let Err(e) = task.await {
            failed.push(e.to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of 120 failed: {failed:?}",
        failed.len()
    );
}

/// A login shell whose startup files write to stderr (a deploy user's `.bashrc` warning, here through
/// `BASH_ENV`) changes no answer: a missing file is missing, a present one reads whole.
#[tokio::test]
async fn startup_files_that_write_to_stderr_change_no_file_read() {
    let rc = tempfile::tempdir().expect("temp dir");
    let noisy = rc.path().join("noisy.sh");
    fs::write(&noisy, "echo 'warning: cannot rehash' >&2\n").expect("write the startup file");
    let sshd = Sshd::start_with(&format!("SetEnv BASH_ENV={}", noisy.display()));
    let remote = sshd.connect();
    let probe = remote.exec(&raw("true")).await.expect("exec");
    assert!(
        String::from_utf8_lossy(&probe.stderr).contains("cannot rehash"),
        "the startup file runs for each command: {probe:?}"
    );
    let missing = sshd.dir.path().join("absent");
    assert_eq!(
        remote
            .read_file(&missing.display().to_string())
            .await
            .expect("a missing file is no error"),
        None
    );
    let present = sshd.dir.path().join("present");
    fs::write(&present, "64 bytes").expect("write");
    assert_eq!(
        remote
            .read_file(&present.display().to_string())
            .await
            .expect("read"),
        Some(b"64 bytes".to_vec())
    );
}

/// A command that stops reading its input while a large stream is still being sent to it (a `docker load`
/// that fails part way) ends with its own status, and the session carries on: a packet left half-sent for its
/// channel would otherwise hold every later command of the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_stops_reading_mid_stream_leaves_the_session_working() {
    const MB: usize = 1 << 20;
    let sshd = Sshd::start();
    let remote = Arc::new(sshd.connect());
    let chunk = Bytes::from(vec![b'x'; MB]);
    for round in 0..4 {
        // Two streams at once keep the socket full, so that writes are often left half-sent.
        let mut streams = Vec::new();
        for _ in 0..2 {
            let (tx, rx) = mpsc::channel(4);
            let stream = remote
                .exec_stream(&raw("head -c 300000 >/dev/null; exit 4"), Some(rx))
                .await
                .expect("exec_stream");
            let chunk = chunk.clone();
            let feeder = tokio::spawn(async move {
                for _ in 0..64 {
                    if tx.send(chunk.clone()).await.is_err() {
                        break;
                    }
                }
            });
            streams.push((stream, feeder));
        }
        for (stream, feeder) in streams {
            let (mut stdout, end) = stream.split();
            let status = tokio::time::timeout(Duration::from_secs(30), async move {
                while stdout.recv().await.is_some() {}
                end.wait().await
            })
            .await
            .unwrap_or_else(|_| panic!("round {round}: the stream's end did not come within 30 s"));
            assert_eq!(
                status.map(|s| s.status).ok(),
                Some(4),
                "round {round}: the command's own status"
            );
            feeder.abort();
        }
        let next = tokio::time::timeout(Duration::from_secs(20), remote.exec(&raw("echo next")))
            .await
            .unwrap_or_else(|_| panic!("round {round}: the next command hung"))
            .expect("the next command runs");
        assert_eq!(next.stdout, b"next\n", "round {round}");
    }
}

/// A caller that gives up on a stream while it is being sent at full speed (a step cancelled beside a failed
/// one) leaves the session working: a data packet of that channel left half-sent would hold every later
/// command of the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_given_up_mid_send_leaves_the_session_working() {
    const MB: usize = 1 << 20;
    let sshd = Sshd::start();
    let remote = Arc::new(sshd.connect());
    let chunk = Bytes::from(vec![b'x'; MB]);
    for round in 0..6 {
        let (tx, rx) = mpsc::channel(4);
        let stream = remote
            .exec_stream(&raw("cat >/dev/null"), Some(rx))
            .await
            .expect("exec_stream");
        let chunk = chunk.clone();
        let feeder = tokio::spawn(async move {
            for _ in 0..512 {
                if tx.send(chunk.clone()).await.is_err() {
                    break;
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(150 + 97 * round)).await;
        drop(stream);
        feeder.abort();
        let next = tokio::time::timeout(Duration::from_secs(20), remote.exec(&raw("echo next")))
            .await
            .unwrap_or_else(|_| panic!("round {round}: the next command hung"))
            .expect("the next command runs");
        assert_eq!(next.stdout, b"next\n", "round {round}");
    }
}
