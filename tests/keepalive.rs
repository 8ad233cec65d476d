//! Releases no keep-alive client notices: nginx resolves the backend's stable name, so a release (five of them,
//! then a rollback) reloads nothing, closes no client connection, and every GET and every order sent (`POST`) over
//! connections held open is answered 2xx — the orders table holds exactly the orders acknowledged.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::release::live_env;
use crate::support::keepalive::{self, Request};
use crate::support::project::Project;

const DB: &str = "vaibava_db";

/// The stack with `RELEASE_N` set to `n` (a new release each time) and cash on delivery, so an order needs no
/// payment gateway.
fn stack_with(p: &Project, n: usize) -> String {
    p.stack_yaml(|t| {
        *t = t.replace(
            "      RUST_LOG: info\n",
            &format!(
                "      RUST_LOG: info\n      PAYMENT_FALLBACK_MODE: \"true\"\n      RELEASE_N: \"{n}\"\n"
            ),
        );
    })
}

/// Runs SQL in the live database (sent base64-encoded, so no quoting gets in the way).
#[track_caller]
fn psql(p: &Project, sql: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(sql);
    let run = p.ssh(&format!(
        "echo {b64} | base64 -d | docker exec -i vl_postgres psql -X -q -At -v ON_ERROR_STOP=1 -U postgres -d {DB}"
    ));
    assert_eq!(run.code, 0, "psql failed: {}{}", run.stdout, run.stderr);
    run.stdout
}

/// The process IDs of nginx's master and workers on the sandbox host: a reload replaces the workers.
fn nginx_processes(p: &Project) -> BTreeSet<String> {
    let run = p.ssh(
        r#"docker exec vl_nginx sh -c 'for d in /proc/[0-9]*; do case "$(tr "\0" " " < $d/cmdline 2>/dev/null)" in "nginx: "*) echo ${d#/proc/};; esac; done'"#,
    );
    run.stdout.lines().map(str::to_string).collect()
}

fn order_body() -> String {
    serde_json::json!({
        "items": [{"handle": "keepalive-silk", "quantity": 1}],
        "customer": {
            "name": "Keep Alive", "phone": "9000000000", "address": "1 Long Road",
            "city": "Pune", "pincode": "411001"
        }
    })
    .to_string()
}

#[test]
fn keepalive_five_releases_and_a_rollback_fail_no_request_on_sixteen_connections() {
    let p = Project::with_sandbox("keepalive");
    p.write_stack(&stack_with(&p, 0));
    p.vldeploy(&["up"]).ok();
    psql(
        &p,
        "INSERT INTO products (handle, title, category, department, price, stock) \
         VALUES ('keepalive-silk', 'Keep-alive silk', 'sarees', 'women', 100, 1000000000);",
    );
    let port: u16 = p.sandbox_var("SANDBOX_HTTP_PORT").parse().unwrap();
    let (code, body) = p.http_get("/api/health");
    assert_eq!(code, 200, "{body}");
    let nginx_before = nginx_processes(&p);
    assert!(nginx_before.len() >= 2, "nginx runs: {nginx_before:?}");

    let limit = Duration::from_mins(15);
    let reads = keepalive::start(port, &Request::Get("/api/health".into()), 16, 20, limit);
    let orders = keepalive::start(
        port,
        &Request::Post("/api/orders".into(), order_body()),
        16,
        4,
        limit,
    );
    std::thread::sleep(Duration::from_secs(2));
    for n in 1..=5 {
        p.write_stack(&stack_with(&p, n));
        let up = p
            .test()
            .arg("up")
            .stdout_has("release `vl_backend` (blue/green)")
            .stdout_lacks("reload `vl_nginx`")
            .stdout_has(p.is_up())
            .run();
        assert_eq!(live_env(&p, "RELEASE_N"), n.to_string(), "{}", up.all());
    }
    p.test()
        .arg("rollback")
        .stdout_has("rolled back `vl_backend`")
        .run();
    assert_eq!(
        live_env(&p, "RELEASE_N"),
        "4",
        "the previous release serves"
    );
    std::thread::sleep(Duration::from_secs(2));
    let reads = reads.stop();
    let orders = orders.stop();
    eprintln!(
        "GET /api/health: {} ok, {} non-2xx, {} socket errors, {} closed by nginx, {} over 250 ms, p50 {:?}, p99 {:?}, max {:?}",
        reads.ok,
        reads.non_2xx,
        reads.socket_errors,
        reads.closed_by_server,
        reads.slower_than(Duration::from_millis(250)),
        reads.quantile(0.5),
        reads.quantile(0.99),
        reads.quantile(1.0)
    );
    eprintln!(
        "POST /api/orders: {} ok, {} non-2xx, {} socket errors, {} closed by nginx, {} over 250 ms, p50 {:?}, p99 {:?}, max {:?}",
        orders.ok,
        orders.non_2xx,
        orders.socket_errors,
        orders.closed_by_server,
        orders.slower_than(Duration::from_millis(250)),
        orders.quantile(0.5),
        orders.quantile(0.99),
        orders.quantile(1.0)
    );

    assert!(reads.ok > 3000, "the reads ran: {reads:?}");
    assert_eq!(
        (reads.non_2xx, reads.socket_errors),
        (0, 0),
        "every GET was answered 2xx: {:?}",
        reads.failures
    );
    assert!(orders.ok > 500, "the orders ran: {} ok", orders.ok);
    assert_eq!(
        (orders.non_2xx, orders.socket_errors),
        (0, 0),
        "every order was answered 2xx: {:?}",
        orders.failures
    );
    // nginx was never reloaded: the same master and workers served every connection.
    assert_eq!(nginx_processes(&p), nginx_before, "nginx was not reloaded");

    // Exactly the orders the shop acknowledged are stored: none lost, none made twice by a retry.
    let acknowledged: BTreeSet<String> = orders
        .acknowledged
        .iter()
        .map(|b| {
            let v: serde_json::Value = serde_json::from_str(b).unwrap();
            v["order_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(acknowledged.len() as u64, orders.ok, "order ids are unique");
    let stored: BTreeSet<String> = psql(&p, "SELECT id FROM orders ORDER BY id;")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        stored.len(),
        acknowledged.len(),
        "the orders table holds as many orders as were acknowledged"
    );
    assert!(
        stored == acknowledged,
        "the stored orders are the acknowledged ones"
    );

    let names: Vec<String> = p.containers().into_keys().collect();
    assert_eq!(
        names,
        vec!["vl_backend", "vl_nginx", "vl_postgres"],
        "no candidate left behind"
    );
}

#[test]
fn keepalive_a_name_with_no_release_shows_the_maintenance_page_and_up_puts_the_release_back() {
    let p = Project::deployed("keepalive_no_release");
    let (code, _) = p.http_get("/api/health");
    assert_eq!(code, 200);
    // The live release leaves the stable name (as on a host set up before it existed): nginx keeps running and
    // answers with the maintenance page, not an error of its own.
    let serving = format!("{}_serving", p.name);
    p.ssh(&format!("docker network disconnect {serving} vl_backend"))
        .ok();
    std::thread::sleep(Duration::from_secs(3));
    let (code, body) = p.http_get("/api/health");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("\"error\":\"maintenance\""), "{body}");
    let (code, _) = p.http_get("/nginx-health");
    assert_eq!(code, 200, "nginx itself serves");

    // `up` sees a release outside the name and puts it back, without recreating it or reloading nginx.
    let before = p.containers()["vl_backend"].clone();
    p.test()
        .arg("up")
        .stdout_has("release `vl_backend` (blue/green)")
        .stdout_has("it is not in service: nginx does not reach it")
        .stdout_lacks("reload `vl_nginx`")
        .run();
    assert_eq!(p.containers()["vl_backend"], before, "the same container");
    std::thread::sleep(Duration::from_secs(3));
    let (code, body) = p.http_get("/api/health");
    assert_eq!(code, 200, "{body}");
    p.test().arg("up").stdout(p.converged()).run();
}
