//! Hostile values pushed into every field of every template and of the health check command, past the stack.yaml
//! validators: the real parsers (`nginx -t`, `nft -c`, `bash -n`, `sh`) still read the output, and the output holds
//! no directive, rule, cron line or command that the template did not write. A value a target cannot carry at all
//! makes rendering fail, naming the problem; it never renders into something else.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};

use vldeploy::backup::Setup;
use vldeploy::firewall::{Allowed, Policy, Ruleset};
use vldeploy::plan::health_test;
use vldeploy::render::{NginxSite, NginxUpstream, render};
use vldeploy::stack::{Probe, Proto, Retention};

/// Values that break out of a naive template: line and statement ends, block braces, quotes of every kind,
/// command substitution, comments, escapes, cron's `%`, a NUL, and a very long value.
fn hostile() -> Vec<String> {
    let mut v: Vec<String> = [
        "shop.test;\n\tadd_header X-Injected yes",
        "x;\nadd_header X-Injected yes;",
        "x\n}\nserver {\n listen 8081;\n add_header X-Injected yes;\n}\n#",
        "x\"; add_header X-Injected yes; #",
        "x'; add_header X-Injected yes; #",
        "x\" accept\n\tip saddr 0.0.0.0/0 accept #",
        "`touch INJECTED`",
        "$(touch INJECTED)",
        "'$(touch INJECTED)'",
        "${HOME}",
        "#",
        "x # y",
        "\tx\ty\t",
        "a\\b\\",
        "\\\"\\'",
        "{",
        "}",
        ";",
        "50% off %s %%",
        "x\r\n* * * * * root touch INJECTED",
        "\n* * * * * root touch INJECTED\n",
        "-n",
        "*",
        "",
        "ünïcödé\u{2028}x",
        "x\0y",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    v.push(format!("{};add_header X-Injected yes;", "a".repeat(5000)));
    v
}

/// The absolute path of `tool`, or a failure saying how to get it.
fn need(tool: &str) -> String {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(tool);
        if p.is_file() {
            return p.display().to_string();
        }
    }
    panic!(
        "`{tool}` is not installed: run .ci/setup (it installs the parsers this test checks output with)"
    );
}

fn run(program: &str, args: &[&str], cwd: &Path) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

// ---------------------------------------------------------------- nginx

/// The directives of an nginx configuration as nginx's own tokenizer reads them: `#` comments skipped, quoted
/// strings (with `\` escapes) one token, `;`, `{` and `}` ending statements. Each directive is its name and
/// its nesting depth.
fn nginx_directives(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut words: Vec<String> = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
            }
            c if c.is_whitespace() => {}
            ';' | '{' | '}' => {
                if let Some(name) = words.first() {
                    out.push((depth, name.clone()));
                }
                words.clear();
                match c {
                    '{' => depth += 1,
                    '}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            '"' | '\'' => {
                let mut w = String::new();
                while let Some(n) = chars.next() {
                    if n == '\\' {
                        if let Some(e) = chars.next() {
                            w.push(e);
                        }
                    } else if n == c {
                        break;
                    } else {
                        w.push(n);
                    }
                }
                words.push(w);
            }
            c => {
                let mut w = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, ';' | '{' | '}') {
                        break;
                    }
                    w.push(n);
                    chars.next();
                }
                words.push(w);
            }
        }
    }
    out
}

struct Nginx {
    dir: tempfile::TempDir,
    binary: String,
}

impl Nginx {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = vldeploy::tls::placeholder("shop.example", 30).unwrap();
        std::fs::create_dir_all(dir.path().join("plain/current")).unwrap();
        std::fs::write(dir.path().join("plain/current/fullchain.pem"), &cert).unwrap();
        std::fs::write(dir.path().join("plain/current/privkey.pem"), &key).unwrap();
        Self {
            dir,
            binary: need("nginx"),
        }
    }

    /// A certificate directory named `name` (which may hold anything a file name can), for `certs`.
    fn certs_named(&self, name: &str) -> String {
        let d = self.dir.path().join("named").join(name);
        std::fs::create_dir_all(d.join("current")).unwrap();
        for f in ["fullchain.pem", "privkey.pem"] {
            std::fs::copy(
                self.dir.path().join("plain/current").join(f),
                d.join("current").join(f),
            )
            .unwrap();
        }
        d.display().to_string()
    }

    fn plain_certs(&self) -> String {
        self.dir.path().join("plain").display().to_string()
    }

    /// `nginx -t` on the rendered site and upstream, inside an `http` block of a configuration of its own.
    fn test(&self, site: &str, upstream: &str) -> (bool, String) {
        let d = self.dir.path();
        std::fs::write(d.join("site.conf"), site).unwrap();
        std::fs::write(d.join("upstream.conf"), upstream).unwrap();
        let conf = format!(
            "pid {0}/nginx.pid;\nerror_log {0}/error.log;\nevents {{}}\nhttp {{\n    include {0}/upstream.conf;\n    include {0}/site.conf;\n}}\n",
            d.display()
        );
        std::fs::write(d.join("nginx.conf"), conf).unwrap();
        let prefix = format!("{}/", d.display());
        let conf_path = d.join("nginx.conf").display().to_string();
        let error_log = d.join("error.log").display().to_string();
        run(
            &self.binary,
            &[
                "-t", "-q", "-p", &prefix, "-e", &error_log, "-c", &conf_path,
            ],
            d,
        )
    }
}

fn site(certs: &str) -> NginxSite {
    NginxSite {
        stack: "shop".into(),
        environment: "production".into(),
        domain: "shop.example".into(),
        tls: true,
        certs: certs.into(),
        site_root: None,
    }
}

fn upstream() -> NginxUpstream {
    NginxUpstream {
        stack: "shop".into(),
        backend_name: "127.0.0.1".into(),
        backend_port: 8080,
    }
}

/// Whether nginx can carry `s` in a string at all: it has no escape for `$`, no way to write other control
/// characters than newline, tab and carriage return, and no token longer than its 4 KiB buffer.
fn nginx_can_carry(s: &str) -> bool {
    s.len() <= 2048
        && !s.contains('$')
        && !s
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
}

#[test]
fn the_nginx_site_with_an_injected_domain_carries_no_injected_directive() {
    let nginx = Nginx::new();
    let up = render("nginx/upstream.conf", &upstream()).unwrap();
    let benign = render("nginx/site.conf", &site(&nginx.plain_certs())).unwrap();
    let expected = nginx_directives(&benign);
    assert!(expected.iter().all(|(_, d)| d != "X-Injected"));
    let bad = NginxSite {
        domain: "shop.test;\n\tadd_header X-Injected yes".into(),
        ..site(&nginx.plain_certs())
    };
    let out = render("nginx/site.conf", &bad).unwrap();
    let (ok, log) = nginx.test(&out, &up);
    assert!(ok, "nginx -t refused the site:\n{log}\n{out}");
    assert_eq!(nginx_directives(&out), expected, "{out}");
    let added_headers = out
        .lines()
        .filter(|l| l.trim_start().starts_with("add_header"))
        .count();
    let template_headers = benign
        .lines()
        .filter(|l| l.trim_start().starts_with("add_header"))
        .count();
    assert_eq!(added_headers, template_headers, "{out}");
}

#[test]
fn every_field_of_the_nginx_site_and_upstream_holds_hostile_values() {
    let nginx = Nginx::new();
    let plain_certs = nginx.plain_certs();
    let up = render("nginx/upstream.conf", &upstream()).unwrap();
    let (ok, log) = nginx.test(
        &render("nginx/site.conf", &site(&plain_certs)).unwrap(),
        &up,
    );
    assert!(ok, "the benign site does not pass nginx -t:\n{log}");
    let mut checked = 0;
    for tls in [false, true] {
        let benign = NginxSite {
            tls,
            ..site(&plain_certs)
        };
        let expected = nginx_directives(&render("nginx/site.conf", &benign).unwrap());
        for value in hostile() {
            let can_name_a_dir = !value.is_empty()
                && !value.contains(['/', '\0'])
                && value.len() < 200
                && value != "."
                && value != "..";
            let mut cases = vec![
                (
                    "stack",
                    NginxSite {
                        stack: value.clone(),
                        ..benign.clone()
                    },
                ),
                (
                    "environment",
                    NginxSite {
                        environment: value.clone(),
                        ..benign.clone()
                    },
                ),
                (
                    "domain",
                    NginxSite {
                        domain: value.clone(),
                        ..benign.clone()
                    },
                ),
            ];
            if can_name_a_dir && tls {
                cases.push((
                    "certs",
                    NginxSite {
                        certs: nginx.certs_named(&value),
                        ..benign.clone()
                    },
                ));
            }
            for (field, ctx) in cases {
                let rendered = render("nginx/site.conf", &ctx);
                let carried = field == "stack" || field == "environment" || nginx_can_carry(&value);
                let out = match rendered {
                    Ok(out) => out,
                    Err(e) => {
                        assert!(!carried, "{field} = {value:?} was refused: {e}");
                        assert!(e.to_string().contains("nginx_str"), "{e}");
                        continue;
                    }
                };
                assert!(
                    carried,
                    "{field} = {value:?} rendered though nginx cannot carry it:\n{out}"
                );
                let (ok, log) = nginx.test(&out, &up);
                // nginx may find a server name meaningless (`*`): that is the value read whole, as the name.
                let name_only =
                    field == "domain" && log.contains("server name") && log.contains("is invalid");
                assert!(
                    ok || name_only,
                    "{field} = {value:?}: nginx -t refused the site:\n{log}\n{out}"
                );
                assert_eq!(
                    nginx_directives(&out),
                    expected,
                    "{field} = {value:?} changed the site's directives:\n{out}"
                );
                checked += 1;
            }
        }
    }
    let benign_up = nginx_directives(&up);
    for value in hostile() {
        let out = render(
            "nginx/upstream.conf",
            &NginxUpstream {
                stack: value.clone(),
                ..upstream()
            },
        )
        .unwrap();
        let (ok, log) = nginx.test(
            &render("nginx/site.conf", &site(&plain_certs)).unwrap(),
            &out,
        );
        assert!(
            ok,
            "stack = {value:?}: nginx -t refused the upstream:\n{log}\n{out}"
        );
        assert_eq!(nginx_directives(&out), benign_up, "{out}");
        // The name is vldeploy's own (`backend-live`), but it is escaped all the same.
        if let Ok(out) = render(
            "nginx/upstream.conf",
            &NginxUpstream {
                backend_name: value.clone(),
                ..upstream()
            },
        ) {
            assert_eq!(nginx_directives(&out), benign_up, "{out}");
        } else {
            assert!(!nginx_can_carry(&value), "{value:?}");
        }
        checked += 1;
    }
    assert!(checked > 100, "only {checked} cases were checked");
}

// ---------------------------------------------------------------- nftables

fn policy() -> Policy {
    Policy {
        stack: "shop".into(),
        ssh_port: 22,
        allow: vec![
            Allowed {
                port: 22,
                proto: Proto::Tcp,
                from: vec![],
                why: "ssh",
            },
            Allowed {
                port: 80,
                proto: Proto::Tcp,
                from: vec![],
                why: "http",
            },
            Allowed {
                port: 443,
                proto: Proto::Tcp,
                from: vec![],
                why: "https",
            },
            Allowed {
                port: 51820,
                proto: Proto::Udp,
                from: vec!["10.0.0.0/8".into(), "2001:db8::/32".into()],
                why: "stack.yaml",
            },
        ],
        icmp: true,
        must_be_closed: vec![5432],
    }
}

/// The ruleset's statements: every line that is not a comment, with the content hash blanked.
fn nft_statements(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.find("sha256:") {
            Some(i) => format!("{}sha256:…{}", &l[..i], &l[(i + 23).min(l.len())..]),
            None => l.to_owned(),
        })
        .collect()
}

fn nft_check(text: &str) -> (bool, String) {
    let nft = need("nft");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ruleset.nft");
    std::fs::write(&path, text).unwrap();
    run(&nft, &["-c", "-f", &path.display().to_string()], dir.path())
}

#[test]
fn every_field_of_the_firewall_ruleset_holds_hostile_values() {
    let benign = Ruleset::render(&policy(), None).unwrap();
    let (ok, log) = nft_check(&benign.text);
    assert!(
        ok,
        "nft -c refused the benign ruleset:\n{log}\n{}",
        benign.text
    );
    let expected = nft_statements(&benign.text);
    for value in hostile() {
        let ruleset = Ruleset::render(
            &Policy {
                stack: value.clone(),
                ..policy()
            },
            None,
        )
        .unwrap();
        let (ok, log) = nft_check(&ruleset.text);
        assert!(
            ok,
            "stack = {value:?}: nft -c refused the ruleset:\n{log}\n{}",
            ruleset.text
        );
        assert_eq!(nft_statements(&ruleset.text), expected, "stack = {value:?}");

        let mut p = policy();
        p.allow[3].from.push(value.clone());
        let err = Ruleset::render(&p, None).unwrap_err().to_string();
        assert!(
            err.contains("is not an IP address or CIDR range"),
            "{value:?}: {err}"
        );
    }
}

// ---------------------------------------------------------------- the backup script and its cron entry

fn setup() -> Setup {
    Setup {
        stack: "shop".into(),
        environment: "production".into(),
        dir: "/var/backups/shop".into(),
        schedule: "0 2 * * *".into(),
        retention: Retention::default(),
        copy_to: Some("backup@vault.example:/srv/shop".into()),
        encrypt: Some("age1qqqq".into()),
        container: "vl_postgres".into(),
        service: None,
        database: "shop_db".into(),
        user: "postgres".into(),
        run_as: "deploy".into(),
        archive_full: None,
        archive_diff: None,
        backup_host_user: None,
        overrides: None,
    }
}

/// The values the script's settings block assigns, as bash reads them.
fn script_settings(script: &str) -> Vec<String> {
    let start = script.find("\nSTACK=").unwrap() + 1;
    let end = script[start..].find("\nMARKER=").unwrap() + start;
    let block = &script[start..end];
    let program = format!(
        "{block}\nprintf '%s\\0' \"$STACK\" \"$DIR\" \"$CONTAINER\" \"$DATABASE\" \"$DB_USER\" \"$COPY_TO\" \"$ENCRYPT_TO\""
    );
    let dir = tempfile::tempdir().unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), program.as_bytes()).unwrap();
    let out = Command::new(need("bash"))
        .arg(file.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "the settings block created a file"
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split('\0')
        .take(7)
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_field_of_the_backup_script_holds_hostile_values() {
    let bash = need("bash");
    let benign = setup().render_script().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backup.sh");
    let syntax = |text: &str| {
        std::fs::write(&path, text).unwrap();
        run(&bash, &["-n", &path.display().to_string()], dir.path())
    };
    assert!(syntax(&benign).0);
    for value in hostile() {
        type Set = fn(&mut Setup, String);
        let fields: [(&str, Set, usize); 8] = [
            ("stack", |s, v| s.stack = v, 0),
            ("dir", |s, v| s.dir = v, 1),
            ("container", |s, v| s.container = v, 2),
            ("database", |s, v| s.database = v, 3),
            ("user", |s, v| s.user = v, 4),
            ("copy_to", |s, v| s.copy_to = Some(v), 5),
            ("encrypt", |s, v| s.encrypt = Some(v), 6),
            ("environment", |s, v| s.environment = v, usize::MAX),
        ];
        for (field, set, slot) in fields {
            let mut s = setup();
            set(&mut s, value.clone());
            let script = match s.render_script() {
                Ok(script) => script,
                Err(e) => {
                    // No shell word can hold a NUL (and bash runs no script file that has one).
                    assert!(
                        value.contains('\0') && field != "environment",
                        "{field} = {value:?}: {e}"
                    );
                    assert!(e.to_string().contains("holds a NUL byte"), "{e}");
                    continue;
                }
            };
            let (ok, log) = syntax(&script);
            assert!(
                ok,
                "{field} = {value:?}: bash -n refused the script:\n{log}"
            );
            let settings = script_settings(&script);
            if slot == usize::MAX {
                assert_eq!(settings, script_settings(&benign));
            } else {
                assert_eq!(settings[slot], value, "{field}");
            }
            // Outside the comment line and the settings block, not one byte changed.
            let outside = |t: &str| {
                let start = t.find("\nSTACK=").unwrap();
                let end = t.find("\nMARKER=").unwrap();
                let after_comment = t.match_indices('\n').nth(1).unwrap().0;
                (t[after_comment..start].to_owned(), t[end..].to_owned())
            };
            assert_eq!(outside(&script), outside(&benign), "{field} = {value:?}");
            assert_eq!(
                script.lines().nth(2),
                benign.lines().nth(2),
                "{field} = {value:?}"
            );
        }
    }
}

/// The lines of a crontab file that cron runs or reads as settings.
fn cron_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect()
}

/// The words `sh` reads from `command` once cron has turned `\%` back into `%`.
fn shell_words(command: &str) -> Vec<String> {
    let sh = need("sh");
    let unescaped = command.replace("\\%", "%");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(sh)
        .arg("-c")
        .arg(format!("set -- {unescaped}; printf '%s\\0' \"$@\""))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "{command} created a file"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_terminator('\0').map(str::to_owned).collect()
}

#[test]
fn the_backup_cron_entry_stays_one_line_whatever_its_fields_hold() {
    let benign = setup().render_cron().unwrap();
    assert_eq!(cron_lines(&benign).len(), 1);
    for value in hostile() {
        for field in ["stack", "environment", "schedule"] {
            let mut s = setup();
            match field {
                "stack" => s.stack = value.clone(),
                "environment" => s.environment = value.clone(),
                _ => s.schedule = value.clone(),
            }
            let out = match s.render_cron() {
                Ok(out) => out,
                Err(e) => {
                    let e = e.to_string();
                    assert!(
                        e.contains("cron_cmd") || e.contains("cron_schedule"),
                        "{field} = {value:?}: {e}"
                    );
                    assert!(
                        field == "schedule" || value.contains(['\n', '\r', '\0']),
                        "{field} = {value:?} was refused: {e}"
                    );
                    continue;
                }
            };
            let lines = cron_lines(&out);
            assert_eq!(lines.len(), 1, "{field} = {value:?}:\n{out}");
            let job = lines[0];
            let command = job
                .strip_prefix("0 2 * * * deploy ")
                .and_then(|c| c.strip_suffix(" >/dev/null 2>&1"))
                .unwrap_or_else(|| panic!("{field} = {value:?}: {job}"));
            assert_eq!(shell_words(command), vec![s.script_path()], "{job}");
        }
    }
}

/// The argv cron's `sh` runs for pgBackRest's backup of type `kind`.
fn pgbackrest_backup(kind: &str) -> Vec<String> {
    [
        "docker",
        "exec",
        "-u",
        "postgres",
        "vl_postgres",
        "pgbackrest",
        "--config=/etc/pgbackrest/pgbackrest.conf",
        "--stanza=main",
        &format!("--type={kind}"),
        "backup",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

#[test]
fn the_pgbackrest_cron_lines_stay_one_job_each_whatever_full_and_diff_hold() {
    let archived = || Setup {
        archive_full: Some("0 3 * * 0".into()),
        archive_diff: Some("0 3 * * 1-6".into()),
        ..setup()
    };
    let benign = archived().render_cron().unwrap();
    let benign_lines = cron_lines(&benign);
    assert_eq!(benign_lines.len(), 3, "{benign}");
    // Values that pass for five fields at a glance, beside the usual hostile ones.
    let mut values = hostile();
    values.extend(
        [
            "0 3 * * 0\n* * * * * root touch INJECTED",
            "0 3 * * 0 %",
            "0 3 * * 50%",
            "0 3 * * 0;",
            "0 3 * * ;touch INJECTED",
            "$(touch INJECTED) * * * *",
            "0 3 * * $(id)",
            "0 3 * * 0 # x",
            "0  3 * * 0",
            "0\t3 * * 0",
            "0 3 * * sun",
        ]
        .map(str::to_owned),
    );
    for value in values {
        for field in ["full", "diff"] {
            let mut s = archived();
            match field {
                "full" => s.archive_full = Some(value.clone()),
                _ => s.archive_diff = Some(value.clone()),
            }
            let out = match s.render_cron() {
                Ok(out) => out,
                Err(e) => {
                    let e = e.to_string();
                    assert!(e.contains("cron_schedule"), "{field} = {value:?}: {e}");
                    assert!(
                        e.contains("is not five cron time fields"),
                        "{field} = {value:?}: {e}"
                    );
                    continue;
                }
            };
            let lines = cron_lines(&out);
            // An empty schedule is no schedule: its line (and, for `full`, the differential's) is left out.
            let expected = match (value.is_empty(), field) {
                (false, _) => 3,
                (true, "full") => 1,
                (true, _) => 2,
            };
            assert_eq!(lines.len(), expected, "{field} = {value:?}:\n{out}");
            assert_eq!(lines[0], benign_lines[0], "the dump's line is untouched");
            for (line, kind) in lines[1..].iter().zip(["full", "diff"]) {
                let fields: Vec<&str> = line.splitn(6, ' ').collect();
                assert_eq!(fields.len(), 6, "{line}");
                assert!(
                    fields[..5].iter().all(|f| f
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"*,-/".contains(&b))),
                    "{field} = {value:?}: {line}"
                );
                let command = fields[5]
                    .strip_prefix("deploy ")
                    .and_then(|c| c.strip_suffix(" >/dev/null 2>&1"))
                    .unwrap_or_else(|| panic!("{field} = {value:?}: {line}"));
                assert_eq!(shell_words(command), pgbackrest_backup(kind), "{line}");
            }
        }
    }
}

#[test]
fn hostile_pgbackrest_schedules_in_stack_yaml_are_refused_at_their_line() {
    for (yaml, shown) in [
        (
            r#""0 3 * * 0\n* * * * * root touch /tmp/INJECTED""#,
            "expected 5 fields",
        ),
        (r#""0 3 * * 0 %""#, "expected 5 fields"),
        (r#""0 3 * * 50%""#, "day of week"),
        (r#""0 3 * * 0;""#, "day of week"),
        (r#""$(touch /tmp/INJECTED) * * * *""#, "minute"),
        (r#""0 3 * * `id`""#, "day of week"),
    ] {
        for field in ["full", "diff"] {
            let (e, line) = archive_refusal("/var/lib/pgbackrest", field, yaml);
            assert!(
                e.contains(&format!("at `backup.archive.{field}`")),
                "{field}: {yaml}: {e}"
            );
            assert!(e.contains("invalid cron schedule"), "{field}: {yaml}: {e}");
            assert!(e.contains(shown), "{field}: {yaml}: {e}");
            assert!(
                e.contains(&format!("stack.yaml:{line}:")),
                "{field}: {yaml} is named at line {line}: {e}"
            );
            assert!(e.contains("help: "), "{e}");
        }
    }
}

/// Loads a valid stack whose `backup.archive` (with `repo`) sets `field` to `yaml`, which must be refused: the error
/// and the line of stack.yaml that holds `field`.
fn archive_refusal(repo: &str, field: &str, yaml: &str) -> (String, usize) {
    use crate::stack_errors::{SECRETS, VALID, write};
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{VALID}backup:\n  archive:\n    repo: {repo}\n    {field}: {yaml}\n");
    write(dir.path(), "stack.yaml", &text);
    write(dir.path(), SECRETS.0, SECRETS.1);
    let lookup = |_: &str| None;
    let e = vldeploy::stack::load_with(&dir.path().join("stack.yaml"), "prod", &lookup)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    (e, text.lines().count())
}

#[test]
fn hostile_backup_host_addresses_in_stack_yaml_are_refused_at_their_line() {
    for yaml in [
        r#""10.0.0.9\nrepo1-path=/""#,
        r#""vault;touch /tmp/INJECTED""#,
        r#""$(id)""#,
        r#""-oProxyCommand=x""#,
        r#""vault example""#,
        r#""a=b""#,
    ] {
        for field in ["repo_address", "db_address"] {
            let (e, line) =
                archive_refusal("ssh://root@vault.example/var/lib/pgbackrest", field, yaml);
            assert!(
                e.contains(&format!("at `backup.archive.{field}`")),
                "{field}: {yaml}: {e}"
            );
            assert!(e.contains("invalid address"), "{field}: {yaml}: {e}");
            assert!(
                e.contains(&format!("stack.yaml:{line}:")),
                "{field}: {yaml}: {e}"
            );
            assert!(!e.contains("\nrepo1-path"), "{e}");
        }
    }
}

#[test]
fn the_renewal_cron_entry_stays_one_job_whatever_its_fields_hold() {
    let ctx = |stack: &str, environment: &str, binary: &str, log: &str| serde_json::json!({"stack": stack, "environment": environment, "binary": binary, "user": "deploy", "log": log});
    let (s, e, b, l) = (
        "shop",
        "production",
        "/var/lib/vldeploy/shop/bin/vldeploy",
        "/var/lib/vldeploy/shop/tls/renew.log",
    );
    let benign = render("tls/renew.cron", &ctx(s, e, b, l)).unwrap();
    let settings: Vec<&str> = cron_lines(&benign)[..2].to_vec();
    for value in hostile() {
        for field in ["stack", "environment", "binary", "log"] {
            let v = value.as_str();
            let (s, e, b, l) = match field {
                "stack" => (v, e, b, l),
                "environment" => (s, v, b, l),
                "binary" => (s, e, v, l),
                _ => (s, e, b, v),
            };
            let out = match render("tls/renew.cron", &ctx(s, e, b, l)) {
                Ok(out) => out,
                Err(err) => {
                    assert!(
                        value.contains(['\n', '\r', '\0']),
                        "{field} = {value:?}: {err}"
                    );
                    assert!(err.to_string().contains("cron_cmd"), "{err}");
                    continue;
                }
            };
            let lines = cron_lines(&out);
            assert_eq!(lines.len(), 3, "{field} = {value:?}:\n{out}");
            assert_eq!(lines[..2], settings[..], "{field} = {value:?}");
            let command = lines[2]
                .strip_prefix("* * * * * deploy ")
                .unwrap_or_else(|| panic!("{}", lines[2]));
            let (argv, redirect) = command.rsplit_once(" >> ").unwrap();
            assert_eq!(
                shell_words(argv),
                vec![b, "renew-on-host", "--stack", s, "--quiet"],
                "{field} = {value:?}: {command}"
            );
            let target = redirect.strip_suffix(" 2>&1").unwrap();
            assert_eq!(
                shell_words(target),
                vec![l],
                "{field} = {value:?}: {command}"
            );
        }
    }
}

// ---------------------------------------------------------------- the index page, the health check

#[test]
fn the_index_page_escapes_its_fields_as_html() {
    let tags = |text: &str| -> Vec<String> {
        text.split('<')
            .skip(1)
            .map(|t| t.split('>').next().unwrap().to_owned())
            .collect()
    };
    let ctx = |stack: &str, domain: &str| serde_json::json!({"stack": stack, "domain": domain});
    let expected = tags(&render("www/index.html", &ctx("shop", "shop.example")).unwrap());
    for value in hostile().into_iter().chain([
        "<script>alert(1)</script>".to_owned(),
        "\"><img src=x onerror=alert(1)>".to_owned(),
    ]) {
        for c in [ctx(&value, "shop.example"), ctx("shop", &value)] {
            let out = render("www/index.html", &c).unwrap();
            assert_eq!(tags(&out), expected, "{value:?}:\n{out}");
        }
    }
}

#[test]
fn the_http_health_check_passes_its_path_to_curl_as_one_argument() {
    let sh = need("sh");
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let args = dir.path().join("args");
    std::fs::write(
        bin.join("curl"),
        format!("#!/bin/sh\nprintf '%s\\0' \"$@\" > '{}'\n", args.display()),
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(bin.join("curl"))
        .status()
        .unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    for value in hostile() {
        if value.contains('\0') {
            continue; // a NUL cannot be part of a command line at all
        }
        let path = format!("/api/{value}");
        let test = health_test(&Probe::Http(path.clone()), 8080);
        assert_eq!(test[0], "CMD-SHELL");
        assert_eq!(test.len(), 2);
        let out = Command::new(&sh)
            .arg("-c")
            .arg(&test[1])
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .current_dir(&work)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{value:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = std::fs::read(&args).unwrap();
        let got: Vec<&[u8]> = got.split(|b| *b == 0).filter(|a| !a.is_empty()).collect();
        assert_eq!(
            got.last().copied(),
            Some(format!("http://127.0.0.1:8080{path}").as_bytes()),
            "{value:?}: {}",
            test[1]
        );
        assert_eq!(got.len(), 4, "{value:?}: curl got {got:?}");
        assert!(
            std::fs::read_dir(&work).unwrap().next().is_none(),
            "{value:?}: the health check created a file: {}",
            test[1]
        );
    }
}

#[test]
fn the_backup_copy_over_ssh_quotes_the_remote_path_for_the_remote_shell() {
    let bash = need("bash");
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    // The "remote" shell: runs the command ssh would send, here, as the login shell would.
    std::fs::write(
        bin.join("ssh"),
        "#!/bin/sh\nfor last; do :; done\nexec sh -c \"$last\"\n",
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(bin.join("ssh"))
        .status()
        .unwrap();
    let source = dir.path().join("db_backup_20250101_020000.sql.gz");
    std::fs::write(&source, b"dump").unwrap();
    let script = setup().render_script().unwrap();
    let start = script.find("remote_word() {").unwrap();
    let copy = script[start..].find("copy_one() {").unwrap() + start;
    let end = script[copy..].find("\n}\n").unwrap() + copy + 3;
    let functions = &script[start..end];
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let mut checked = 0;
    for value in hostile() {
        if value.is_empty() || value.contains(['/', '\0']) || value.len() > 200 {
            continue;
        }
        let target = dir.path().join("remote").join(&value);
        let program = format!(
            "COPY_TO={}\n{functions}copy_one {}\n",
            vldeploy::transport::shell_quote(&format!("vault.example:{}", target.display())),
            vldeploy::transport::shell_quote(&source.display().to_string()),
        );
        let file = dir.path().join("program.sh");
        std::fs::write(&file, &program).unwrap();
        let out = Command::new(&bash)
            .arg(&file)
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .current_dir(&work)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{value:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let copied = target.join("db_backup_20250101_020000.sql.gz");
        assert_eq!(std::fs::read(&copied).unwrap(), b"dump", "{value:?}");
        assert_eq!(
            std::fs::read_dir(&target).unwrap().count(),
            1,
            "{value:?}: a temporary was left"
        );
        assert!(
            std::fs::read_dir(&work).unwrap().next().is_none(),
            "{value:?} ran a command"
        );
        std::fs::remove_dir_all(&target).unwrap();
        checked += 1;
    }
    assert!(checked > 15, "{checked}");
}

/// The storefront's locations (`site:`) pass the real `nginx -t`, over HTTP and HTTPS.
#[test]
fn the_storefront_site_passes_nginx_t() {
    let nginx = Nginx::new();
    let up = render("nginx/upstream.conf", &upstream()).unwrap();
    for tls in [false, true] {
        let with_site = NginxSite {
            tls,
            site_root: Some("/var/www/storefront/current".into()),
            ..site(&nginx.plain_certs())
        };
        let out = render("nginx/site.conf", &with_site).unwrap();
        let (ok, log) = nginx.test(&out, &up);
        assert!(ok, "nginx -t refused the storefront site:\n{log}\n{out}");
    }
}
