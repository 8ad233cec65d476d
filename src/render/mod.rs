//! Templates (embedded in the binary) rendered with one strict minijinja environment.

use std::path::Path;

pub mod escape;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;

/// Every template vldeploy renders, by name, embedded at build time.
const TEMPLATES: &[(&str, &str)] = &[
    (
        "nginx/site.conf",
        include_str!("../../templates/nginx/site.conf.j2"),
    ),
    (
        "nginx/upstream.conf",
        include_str!("../../templates/nginx/upstream.conf.j2"),
    ),
    (
        "www/index.html",
        include_str!("../../templates/www/index.html.j2"),
    ),
    (
        "nftables/ruleset.nft",
        include_str!("../../templates/nftables/ruleset.nft.j2"),
    ),
    (
        "tls/renew.cron",
        include_str!("../../templates/tls/renew.cron.j2"),
    ),
    (
        "backup/backup.sh",
        include_str!("../../templates/backup/backup.sh.j2"),
    ),
    (
        "backup/cron",
        include_str!("../../templates/backup/cron.j2"),
    ),
    (
        "backup/pgbackrest.conf",
        include_str!("../../templates/backup/pgbackrest.conf.j2"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template `{name}` failed to render: {detail}")]
    Template { name: String, detail: String },
}

/// Renders template `name` with `context`. A variable the template uses but the context lacks is an error.
pub fn render<S: Serialize>(name: &str, context: &S) -> Result<String, RenderError> {
    render_in(None, name, context)
}

/// Like `render`, but a file `<overrides>/<name>.j2` (a project's own `templates/` folder) takes the place
/// of the embedded template of that name.
pub fn render_in<S: Serialize>(
    overrides: Option<&Path>,
    name: &str,
    context: &S,
) -> Result<String, RenderError> {
    let mut env = environment();
    let fail = |e: minijinja::Error| RenderError::Template {
        name: name.to_string(),
        detail: format!("{e:#}"),
    };
    if let Some(path) = overrides
        .map(|d| d.join(format!("{name}.j2")))
        .filter(|p| p.is_file())
    {
        let source = std::fs::read_to_string(&path).map_err(|e| RenderError::Template {
            name: name.to_string(),
            detail: format!("cannot read `{}`: {e}", path.display()),
        })?;
        env.add_template_owned(name.to_string(), source)
            .map_err(fail)?;
    }
    let template = env.get_template(name).map_err(fail)?;
    let mut out = template.render(context).map_err(fail)?;
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    // `*.html` templates are HTML-escaped by minijinja's default (by name); every other target has its filter.
    escape::register(&mut env);
    for (name, source) in TEMPLATES {
        // The templates are part of the binary and covered by tests; a broken one fails `render` with its name.
        let _ = env.add_template(name, source);
    }
    env
}

/// The context of the nginx site template.
#[derive(Debug, Clone, Serialize)]
pub struct NginxSite {
    pub stack: String,
    pub environment: String,
    pub domain: String,
    /// Serve HTTPS (port 80 keeps only the ACME challenges and redirects the rest).
    pub tls: bool,
    /// Where nginx finds `current/fullchain.pem` and `current/privkey.pem`.
    pub certs: String,
    /// The storefront's document root (`site:`), the symlink to its live release; `None`: the placeholder page.
    pub site_root: Option<String>,
}

/// The context of the nginx upstream template: the stable name nginx resolves the serving backend by.
#[derive(Debug, Clone, Serialize)]
pub struct NginxUpstream {
    pub stack: String,
    /// The name Docker's DNS resolves to every serving release (`backend-live`, a network alias).
    pub backend_name: String,
    pub backend_port: u16,
}

#[cfg(test)]
pub(crate) mod snapshot {
    //! Snapshot files under `src/render/snapshots/`; `UPDATE_SNAPSHOTS=1` rewrites them.

    pub(crate) fn assert_snapshot(name: &str, actual: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/render/snapshots")
            .join(name);
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(&path, actual).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            expected == actual,
            "snapshot `{name}` differs; review the change and run with UPDATE_SNAPSHOTS=1 to accept it\n--- expected\n{expected}\n--- actual\n{actual}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> NginxSite {
        NginxSite {
            stack: "vaibava".into(),
            environment: "sandbox".into(),
            domain: "localhost".into(),
            tls: false,
            certs: "/etc/nginx/certs".into(),
            site_root: None,
        }
    }

    #[test]
    fn the_storefront_is_served_from_its_current_release_with_cache_headers() {
        for tls in [false, true] {
            let out = render(
                "nginx/site.conf",
                &NginxSite {
                    tls,
                    site_root: Some("/var/www/storefront/current".into()),
                    ..site()
                },
            )
            .unwrap();
            let assets = out.split("location /assets/ {").nth(1).unwrap();
            let (assets, page) = assets.split_once("location / {").unwrap();
            assert!(
                assets.contains("root /var/www/storefront/current;"),
                "{out}"
            );
            assert!(assets.contains("Cache-Control \"public, max-age=31536000, immutable\""));
            assert!(
                page.contains("add_header Cache-Control \"no-cache\";"),
                "{out}"
            );
            assert!(!out.contains("/var/www/site;"), "{out}");
            // A location's own `add_header` drops the server's: HSTS is repeated where TLS is on.
            assert_eq!(assets.contains("Strict-Transport-Security"), tls);
            assert_eq!(page.contains("Strict-Transport-Security"), tls);
        }
    }

    #[test]
    fn nginx_site_snapshot() {
        let out = render("nginx/site.conf", &site()).unwrap();
        crate::render::snapshot::assert_snapshot("nginx_site.conf", &out);
    }

    #[test]
    fn acme_path_comes_before_everything_and_api_goes_to_the_backend() {
        let out = render("nginx/site.conf", &site()).unwrap();
        let acme = out.find("/.well-known/acme-challenge/").unwrap();
        let root = out.find("location / {").unwrap();
        assert!(acme < root);
        assert!(out.contains("proxy_pass $backend_upstream;"));
        let up = render(
            "nginx/upstream.conf",
            &NginxUpstream {
                stack: "s".into(),
                backend_name: "backend-live".into(),
                backend_port: 8080,
            },
        )
        .unwrap();
        assert!(
            up.contains("resolver 127.0.0.11 valid=1s ipv6=off;\n"),
            "{up}"
        );
        assert!(
            up.contains("    default http://backend-live:8080;\n"),
            "{up}"
        );
    }

    #[test]
    fn nginx_site_https_snapshot() {
        let out = render(
            "nginx/site.conf",
            &NginxSite {
                tls: true,
                ..site()
            },
        )
        .unwrap();
        crate::render::snapshot::assert_snapshot("nginx_site_https.conf", &out);
    }

    #[test]
    fn https_keeps_the_acme_path_on_port_80_ahead_of_the_redirect() {
        let out = render(
            "nginx/site.conf",
            &NginxSite {
                tls: true,
                ..site()
            },
        )
        .unwrap();
        let (plain, secure) = out.split_once("listen 443 ssl").unwrap();
        let acme = plain
            .find("location ^~ /.well-known/acme-challenge/")
            .unwrap();
        let redirect = plain.find("return 301 https://$host$request_uri;").unwrap();
        assert!(acme < redirect);
        assert!(
            !plain.contains("proxy_pass"),
            "the app is served over HTTPS only"
        );
        assert!(secure.contains("proxy_pass $backend_upstream;"));
        assert!(secure.contains("ssl_protocols TLSv1.2 TLSv1.3;"));
        assert!(secure.contains("ssl_stapling off;"));
        assert!(secure.contains("Strict-Transport-Security"));
        assert!(secure.contains("ssl_certificate /etc/nginx/certs/current/fullchain.pem;"));
        let plain_only = render("nginx/site.conf", &site()).unwrap();
        assert!(!plain_only.contains("443"));
        assert!(!plain_only.contains("return 301"));
    }

    #[test]
    fn the_renewal_cron_entry_runs_the_host_binary_every_minute() {
        let out = render(
            "tls/renew.cron",
            &serde_json::json!({"stack": "shop", "environment": "production", "binary": "/var/lib/vldeploy/shop/bin/vldeploy", "user": "deploy", "log": "/var/lib/vldeploy/shop/tls/renew.log"}),
        )
        .unwrap();
        assert!(out.contains(
            "* * * * * deploy /var/lib/vldeploy/shop/bin/vldeploy renew-on-host --stack shop --quiet >> /var/lib/vldeploy/shop/tls/renew.log 2>&1\n"
        ), "{out}");
    }

    #[test]
    fn a_project_template_overrides_the_embedded_one() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("nginx")).unwrap();
        std::fs::write(
            d.path().join("nginx/site.conf.j2"),
            "server_name {{ domain }};",
        )
        .unwrap();
        let out = render_in(Some(d.path()), "nginx/site.conf", &site()).unwrap();
        assert_eq!(out, "server_name localhost;\n");
        let embedded = render_in(
            Some(d.path()),
            "www/index.html",
            &serde_json::json!({"stack": "s", "domain": "d"}),
        )
        .unwrap();
        assert!(embedded.contains("<h1>s</h1>"));
    }

    #[test]
    fn missing_variable_is_an_error_naming_the_template() {
        let err = render("nginx/site.conf", &serde_json::json!({"stack": "x"})).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("template `nginx/site.conf` failed to render"),
            "{err}"
        );
    }
}
