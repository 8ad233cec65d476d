//! The homepage check of `doctor` and the checklist: `/` through nginx answers 200 with a non-empty page that
//! carries its `vldeploy-page` marker, and every asset the page references answers 200.

use crate::engine::{Engine, EngineError};
use crate::layout::container_name;

/// The marker every page vldeploy serves carries: `<meta name="vldeploy-page" content="…">`.
pub const MARKER: &str = "vldeploy-page";

/// How many of nginx's last error lines a blank homepage shows.
pub const ERROR_LINES: usize = 5;

/// What loading the homepage showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The HTTP status of `/` (0: no answer).
    pub status: u16,
    pub body: String,
    /// Each asset the page references, with the status it answered.
    pub assets: Vec<(String, u16)>,
}

/// Loads `/` and its assets with curl inside the nginx container (following a redirect to HTTPS).
pub async fn load(engine: &Engine) -> Result<Loaded, EngineError> {
    load_in(engine, &container_name("nginx")).await
}

/// Loads `/` and its assets with curl inside the container `nginx` (an edge node's nginx task on a swarm).
pub async fn load_in(engine: &Engine, nginx: &str) -> Result<Loaded, EngineError> {
    let (code, out) = engine
        .exec(
            nginx,
            &[
                "curl",
                "-s",
                "-k",
                "-L",
                "-m",
                "5",
                "-w",
                "\n%{http_code}",
                "http://127.0.0.1/",
            ],
        )
        .await?;
    let (body, status) = split_status(&out);
    let status = if code == 0 { status } else { 0 };
    let mut assets = Vec::new();
    let paths = references(body);
    if !paths.is_empty() {
        let mut argv: Vec<String> = ["curl", "-s", "-k", "-L", "-m", "5", "-w", "%{http_code}\n"]
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        for p in &paths {
            argv.extend([
                "-o".into(),
                "/dev/null".into(),
                format!("http://127.0.0.1{p}"),
            ]);
        }
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let (_, out) = engine.exec(nginx, &argv).await?;
        let codes: Vec<u16> = out.lines().map(|l| l.trim().parse().unwrap_or(0)).collect();
        for (i, p) in paths.iter().enumerate() {
            assets.push((p.clone(), codes.get(i).copied().unwrap_or(0)));
        }
    }
    Ok(Loaded {
        status,
        body: body.to_owned(),
        assets,
    })
}

/// curl's output: the body, then the status on the last line.
fn split_status(out: &str) -> (&str, u16) {
    match out.rsplit_once('\n') {
        Some((body, code)) => (body, code.trim().parse().unwrap_or(0)),
        None => ("", out.trim().parse().unwrap_or(0)),
    }
}

/// The local paths a page loads through `src` and `href` attributes (stylesheets, scripts, images, icons; not
/// links to other pages), absolute, each once, in order.
pub fn references(page: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let lower = page.to_ascii_lowercase();
    for attr in ["src=", "href="] {
        let mut from = 0;
        while let Some(at) = lower[from..].find(attr) {
            let start = from + at + attr.len();
            from = start;
            // An attribute, not the end of a longer name (`data-src=`).
            let before = lower[..start - attr.len()].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                continue;
            }
            // A link to another page (`<a href>`, `<area href>`) is not an asset the page needs.
            if is_link(&lower[..start - attr.len()]) {
                continue;
            }
            let rest = &page[start..];
            let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                continue;
            };
            let Some(end) = rest[1..].find(quote) else {
                continue;
            };
            let value = rest[1..=end].trim();
            if let Some(path) = local_path(value)
                && !out.contains(&path)
            {
                out.push(path);
            }
        }
    }
    out
}

/// Whether the tag open at the end of `before` is `<a …` or `<area …`.
fn is_link(before: &str) -> bool {
    let Some(open) = before.rfind('<') else {
        return false;
    };
    let tag: String = before[open + 1..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    matches!(tag.as_str(), "a" | "area")
}

/// A reference served by this nginx, as an absolute path; `None` for other sites, fragments, data and scripts.
fn local_path(value: &str) -> Option<String> {
    let lower = value.to_ascii_lowercase();
    let foreign = [
        "http:",
        "https:",
        "//",
        "data:",
        "mailto:",
        "javascript:",
        "tel:",
        "#",
    ];
    if value.is_empty() || foreign.iter().any(|f| lower.starts_with(f)) {
        return None;
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let path = value.split('#').next().unwrap_or_default();
    Some(if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{}", path.trim_start_matches("./"))
    })
}

/// The check's verdict: `Ok(what it saw)` or `Err(what is wrong)`. A problem of `/` itself starts with
/// "blank homepage".
pub fn judge(loaded: &Loaded) -> Result<String, String> {
    if loaded.status == 0 {
        return Err("blank homepage: GET / through nginx got no answer".into());
    }
    if loaded.status != 200 {
        return Err(format!(
            "blank homepage: GET / through nginx answered {}",
            loaded.status
        ));
    }
    if loaded.body.trim().is_empty() {
        return Err("blank homepage: GET / through nginx answered 200 with an empty page".into());
    }
    if !loaded.body.contains(MARKER) {
        return Err(format!(
            "blank homepage: GET / answered 200 but the page lacks its `{MARKER}` marker ({} bytes)",
            loaded.body.len()
        ));
    }
    let broken: Vec<String> = loaded
        .assets
        .iter()
        .filter(|(_, status)| *status != 200)
        .map(|(path, status)| format!("{path} ({status})"))
        .collect();
    if !broken.is_empty() {
        return Err(format!(
            "the homepage loads, but {} of its {} assets fail: {}",
            broken.len(),
            loaded.assets.len(),
            broken.join(", ")
        ));
    }
    Ok(format!(
        "GET / through nginx: 200, {} bytes with the `{MARKER}` marker, {} asset{} 200",
        loaded.body.len(),
        loaded.assets.len(),
        if loaded.assets.len() == 1 { "" } else { "s" }
    ))
}

/// nginx's last `n` error lines from its container's log (the access log's JSON lines left out).
pub fn error_lines(log: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim_end)
        .filter(|l| {
            !l.trim_start().starts_with('{')
                && ["[emerg]", "[alert]", "[crit]", "[error]", "[warn]"]
                    .iter()
                    .any(|level| l.contains(level))
        })
        .collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| (*l).to_owned())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn loaded(status: u16, body: &str, assets: &[(&str, u16)]) -> Loaded {
        Loaded {
            status,
            body: body.into(),
            assets: assets.iter().map(|(p, s)| ((*p).to_string(), *s)).collect(),
        }
    }

    #[test]
    fn references_are_the_local_src_and_href_values() {
        let page = r##"<link rel="stylesheet" href="/assets/shop.1.css"><script src='assets/shop.2.js' defer></script>
            <a href="#/">home</a><a href="https://example.com/x">x</a><img data-src="/lazy.png" src="./logo.png">
            <a HREF="/api/health">the API</a><link rel=icon href="/assets/shop.1.css"><a href="//cdn.example/y.js"></a>"##;
        assert_eq!(
            references(page),
            vec!["/assets/shop.2.js", "/logo.png", "/assets/shop.1.css"]
        );
        assert_eq!(
            references("<a class=\"x\" href=\"/p\">"),
            Vec::<String>::new()
        );
        assert!(references("").is_empty());
        assert!(references("<a href=unquoted>").is_empty());
    }

    #[test]
    fn a_page_with_its_marker_and_assets_passes() {
        let ok = loaded(
            200,
            "<meta name=\"vldeploy-page\" content=\"storefront\">",
            &[("/a.css", 200), ("/b.js", 200)],
        );
        assert_eq!(
            judge(&ok).unwrap_or_default(),
            "GET / through nginx: 200, 48 bytes with the `vldeploy-page` marker, 2 assets 200"
        );
    }

    #[test]
    fn each_kind_of_blank_page_is_named() {
        let cases = [
            (
                loaded(0, "", &[]),
                "blank homepage: GET / through nginx got no answer",
            ),
            (
                loaded(403, "<html>forbidden</html>", &[]),
                "blank homepage: GET / through nginx answered 403",
            ),
            (
                loaded(200, " \n", &[]),
                "blank homepage: GET / through nginx answered 200 with an empty page",
            ),
            (
                loaded(200, "<p>hello</p>", &[]),
                "blank homepage: GET / answered 200 but the page lacks its `vldeploy-page` marker (12 bytes)",
            ),
            (
                loaded(200, "vldeploy-page", &[("/a.css", 200), ("/b.js", 404)]),
                "the homepage loads, but 1 of its 2 assets fail: /b.js (404)",
            ),
        ];
        for (l, want) in cases {
            assert_eq!(judge(&l).unwrap_err(), want);
        }
    }

    #[test]
    fn nginx_error_lines_leave_the_access_log_out() {
        let log = "{\"time\":\"t\",\"path\":\"/\",\"status\":403}\n\
                   2026/01/01 10:00:00 [notice] 1#1: signal process started\n\
                   2026/01/01 10:00:01 [error] 30#30: *1 directory index of \"/var/www/storefront/current/\" is forbidden\n\
                   2026/01/01 10:00:02 [crit] 30#30: *2 open() failed\n";
        assert_eq!(
            error_lines(log, 5),
            vec![
                "2026/01/01 10:00:01 [error] 30#30: *1 directory index of \"/var/www/storefront/current/\" is forbidden",
                "2026/01/01 10:00:02 [crit] 30#30: *2 open() failed",
            ]
        );
        assert_eq!(error_lines(log, 1).len(), 1);
        assert!(error_lines("", 5).is_empty());
    }
}
