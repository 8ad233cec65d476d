//! The commands an edge node of a swarm runs for nginx's host directories: reload its nginx task, remove a
//! challenge token, ask the API's health through its nginx task.

use super::{Command, q};
use crate::layout;

/// Tests and reloads the configuration of every task container of the stack's nginx service on this node
/// (found by Swarm's service label), so that a new certificate is served without restarting anything. Exits
/// 3 when no nginx task runs on the node.
pub fn reload_nginx(stack: &str) -> Command {
    let service = format!("{stack}_nginx");
    Command::script(format!(
        "ids=$(docker ps -q --filter {label}) || exit $?; \
         if [ -z \"$ids\" ]; then echo 'no task of service '{service}' runs on this node' >&2; exit 3; fi; \
         for c in $ids; do docker exec \"$c\" nginx -t -q && docker exec \"$c\" nginx -s reload || exit $?; done",
        label = q(&format!("label=com.docker.swarm.service.name={service}")),
        service = q(&service),
    ))
}

/// `GET /api/health` through the first nginx task container on this node, beside the maintenance flag's
/// state: prints `none` when no nginx task runs here, else `on|off STATUS` (`000` when nothing answered in 5 s).
/// With `tls:` nginx moves plain HTTP to HTTPS: the one redirect is followed, to its own certificate.
pub fn health_through_nginx(stack: &str) -> Command {
    let service = format!("{stack}_nginx");
    Command::script(format!(
        "c=$(docker ps -q --filter {label} | head -n 1) || exit $?; \
         if [ -z \"$c\" ]; then echo none; exit 0; fi; \
         if [ -e {flag} ]; then m=on; else m=off; fi; \
         s=$(docker exec \"$c\" curl -s -k -L --max-redirs 1 -m 5 -o /dev/null -w '%{{http_code}}' http://127.0.0.1/api/health) || s=000; \
         echo \"$m $s\"",
        label = q(&format!("label=com.docker.swarm.service.name={service}")),
        flag = q(&layout::maintenance_flag(stack)),
    ))
}

/// Prints the ID of the first task container of the stack's nginx service on this node (nothing when none
/// runs here).
pub fn nginx_task(stack: &str) -> Command {
    let service = format!("{stack}_nginx");
    Command::script(format!(
        "docker ps -q --filter {label} | head -n 1",
        label = q(&format!("label=com.docker.swarm.service.name={service}")),
    ))
}

/// Removes a challenge token from the stack's ACME webroot.
pub fn remove_token(stack: &str, token: &str) -> Command {
    Command::argv(["rm", "-f"]).operands(&[token_path(stack, token)])
}

/// Where nginx serves the challenge token `token` from on the host.
pub fn token_path(stack: &str, token: &str) -> String {
    format!(
        "{}/.well-known/acme-challenge/{token}",
        layout::acme_webroot(stack)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reload_finds_the_nginx_task_by_its_service_label() {
        assert_eq!(
            reload_nginx("shop").text(),
            "ids=$(docker ps -q --filter label=com.docker.swarm.service.name=shop_nginx) || exit $?; \
             if [ -z \"$ids\" ]; then echo 'no task of service 'shop_nginx' runs on this node' >&2; exit 3; fi; \
             for c in $ids; do docker exec \"$c\" nginx -t -q && docker exec \"$c\" nginx -s reload || exit $?; done"
        );
    }

    #[test]
    fn the_health_asks_the_nginx_task_of_this_node_and_reads_the_flag() {
        let cmd = health_through_nginx("shop");
        assert_eq!(
            cmd.text(),
            "c=$(docker ps -q --filter label=com.docker.swarm.service.name=shop_nginx | head -n 1) || exit $?; \
             if [ -z \"$c\" ]; then echo none; exit 0; fi; \
             if [ -e /var/lib/vldeploy/shop/www/.maintenance ]; then m=on; else m=off; fi; \
             s=$(docker exec \"$c\" curl -s -k -L --max-redirs 1 -m 5 -o /dev/null -w '%{http_code}' http://127.0.0.1/api/health) || s=000; \
             echo \"$m $s\""
        );
        crate::remote::tests::assert_parses_in_sh(&cmd);
    }

    #[test]
    fn the_nginx_task_of_this_node_is_found_by_its_service_label() {
        let cmd = nginx_task("shop");
        assert_eq!(
            cmd.text(),
            "docker ps -q --filter label=com.docker.swarm.service.name=shop_nginx | head -n 1"
        );
        crate::remote::tests::assert_parses_in_sh(&cmd);
    }

    #[test]
    fn a_token_is_removed_from_the_webroot() {
        assert_eq!(
            remove_token("shop", "abc-_1").text(),
            "rm -f /var/lib/vldeploy/shop/acme/.well-known/acme-challenge/abc-_1"
        );
    }
}
