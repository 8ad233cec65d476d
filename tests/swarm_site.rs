//! The storefront (`site:`) on every edge of the cluster: `up` puts its release on both edges, a change of the
//! site switches both with no failed request while each is asked continuously, a second `up` changes nothing.
//! The environment is left as it was found (no `site:`, the placeholder page).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::cluster::Node;
use crate::support::project::{Project, http_get, repo};
use crate::support::ssh::ssh_ok;

/// The edges: the first two hosts of the cluster.
fn edges(nodes: &[Node]) -> &[Node] {
    &nodes[..2]
}

pub(crate) fn check(p: &Project, nodes: &[Node]) {
    let started = Instant::now();
    let site = p.path().join("storefront");
    let copied = std::process::Command::new("cp")
        .arg("-r")
        .arg(repo().join("frontend"))
        .arg(&site)
        .status()
        .unwrap();
    assert!(copied.success());
    let with_site = |t: &mut String| t.push_str("site: storefront/\n");
    p.write_stack(&p.stack_yaml(with_site));

    // The first release: on both edges, each serving it through its own nginx.
    let up = p.vldeploy(&["--env", "cluster", "up"]).ok();
    let firsts = up.stderr.matches(": site ").count();
    assert_eq!(firsts, 2, "one site line per edge: {}", up.all());
    assert!(up.stderr.contains("(first release)"), "{}", up.all());
    let hash = |node: &Node| {
        ssh_ok(
            node,
            &format!("readlink /var/lib/vldeploy/{}/site/current", p.name),
        )
    };
    let first = hash(&nodes[0]);
    assert_eq!(first.len(), 16, "{first:?}");
    for node in edges(nodes) {
        assert_eq!(hash(node), first, "both edges serve one release");
        let (status, body) = http_get(node.http_port, "/");
        assert_eq!(status, 200, "{body}");
        assert!(
            body.contains(r#"<meta name="vldeploy-page" content="storefront">"#),
            "edge {}: {body}",
            node.address
        );
        // An asset the page names (by its content hash) answers too.
        let asset = body
            .split("href=\"/assets/")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("the page names no stylesheet: {body}"));
        let (status, _) = http_get(node.http_port, &format!("/assets/{asset}"));
        assert_eq!(status, 200, "`/assets/{asset}` through {}", node.address);
    }
    // The db node serves nothing and holds no release.
    let none = ssh_ok(
        &nodes[2],
        &format!(
            "test -e /var/lib/vldeploy/{}/site && echo yes || echo no",
            p.name
        ),
    );
    assert_eq!(none, "no");

    // A change of the page: both edges switch, asked all the while, and every answer is a whole page.
    let index = site.join("index.html");
    let page = std::fs::read_to_string(&index).unwrap();
    std::fs::write(
        &index,
        page.replace("<title>Vaibava", "<title>Vaibava — new season"),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let askers: Vec<_> = edges(nodes)
        .iter()
        .map(|n| {
            let (port, stop) = (n.http_port, stop.clone());
            std::thread::spawn(move || {
                let (mut answers, mut failed, mut new) = (0, Vec::new(), 0);
                while !stop.load(Ordering::Relaxed) {
                    let (status, body) = http_get(port, "/");
                    answers += 1;
                    if status != 200 || !body.contains("</html>") {
                        failed.push(status);
                    } else if body.contains("new season") {
                        new += 1;
                    }
                }
                (answers, failed, new)
            })
        })
        .collect();
    let switched = Instant::now();
    let up = p.vldeploy(&["--env", "cluster", "up"]).ok();
    let switch_secs = switched.elapsed().as_secs_f64();
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for (node, asker) in edges(nodes).iter().zip(askers) {
        let (answers, failed, new) = asker.join().unwrap();
        eprintln!(
            "timing: edge {}: {answers} requests during the site's `up` ({switch_secs:.1} s), {} failed, {new} saw the new page",
            node.address,
            failed.len()
        );
        assert!(
            answers > 5,
            "edge {}: only {answers} requests",
            node.address
        );
        assert!(
            failed.is_empty(),
            "edge {}: failed answers {failed:?}",
            node.address
        );
        assert!(
            new > 0,
            "edge {}: the new page was never served",
            node.address
        );
    }
    let second = hash(&nodes[0]);
    assert_ne!(second, first);
    assert_eq!(
        up.stderr.matches(&format!("(was {first})")).count(),
        2,
        "{}",
        up.all()
    );
    assert!(
        !up.stderr.contains("service: update"),
        "a site change restarts nothing: {}",
        up.all()
    );
    for node in edges(nodes) {
        assert_eq!(hash(node), second);
        assert!(http_get(node.http_port, "/").1.contains("new season"));
        // The release before stays on the edge for a rollback.
        let kept = ssh_ok(
            node,
            &format!(
                "test -d /var/lib/vldeploy/{}/site/{first} && echo kept",
                p.name
            ),
        );
        assert_eq!(kept, "kept");
    }

    // A second `up` finds every edge serving it.
    let again = p.vldeploy(&["--env", "cluster", "up"]).ok();
    assert!(
        again.stdout.ends_with("on 3 hosts: no changes\n"),
        "{}",
        again.all()
    );

    // As found: no `site:`, the placeholder page on both edges.
    p.write_stack(&p.stack_yaml(|_| {}));
    p.vldeploy(&["--env", "cluster", "up"]).ok();
    for node in edges(nodes) {
        let (status, body) = http_get(node.http_port, "/");
        assert_eq!(status, 200);
        assert!(
            !body.contains("new season"),
            "edge {}: {body}",
            node.address
        );
    }
    eprintln!(
        "timing: the storefront's check on the cluster in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
