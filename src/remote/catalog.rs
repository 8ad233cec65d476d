//! The catalog seed's command: the CSV posted to the backend's admin import from inside the nginx container.

use super::{Command, q};

/// `POST <url>` with the CSV as the body, from inside `container` (`docker exec -i`). Stdin carries the admin
/// token on its first line and the CSV after it: the token reaches curl through a header file of mode 0600,
/// never a command line. Prints the backend's answer, then the HTTP status on the last line.
pub fn import(container: &str, url: &str) -> Command {
    let script = format!(
        "umask 077; IFS= read -r t; h=$(mktemp); printf 'Authorization: Bearer %s\\n' \"$t\" > \"$h\"; \
         curl -s -m 120 -w '\\n%{{http_code}}' -X POST -H @\"$h\" -H 'content-type: text/csv' --data-binary @- {}; \
         s=$?; rm -f \"$h\"; exit $s",
        q(url)
    );
    Command::argv(["docker", "exec", "-i", container, "sh", "-c", &script])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_goes_through_stdin_and_a_header_file() {
        assert_eq!(
            import(
                "vl_nginx",
                "http://vl_backend:8080/api/admin/catalog/import"
            )
            .text(),
            "docker exec -i vl_nginx sh -c 'umask 077; IFS= read -r t; h=$(mktemp); printf '\\''Authorization: Bearer %s\\n'\\'' \"$t\" > \"$h\"; \
             curl -s -m 120 -w '\\''\\n%{http_code}'\\'' -X POST -H @\"$h\" -H '\\''content-type: text/csv'\\'' --data-binary @- http://vl_backend:8080/api/admin/catalog/import; \
             s=$?; rm -f \"$h\"; exit $s'"
        );
    }

    #[test]
    fn the_inner_script_parses_in_sh() {
        crate::remote::tests::assert_parses_in_sh(&import("vl_nginx", "http://x:1/a b"));
    }
}
