//! The JSON Schema (draft 2020-12) of stack.yaml, for editors; `vldeploy schema` prints it.

use serde_json::{Map, Value, json};

use super::keys;

/// An object schema that allows only `keys`, each described by `props` (keys without an entry take any value).
fn object(keys: &[&str], mut props: Map<String, Value>, description: &str) -> Value {
    let properties: Map<String, Value> = keys
        .iter()
        .map(|k| {
            (
                (*k).to_owned(),
                props.remove(*k).unwrap_or_else(|| json!({})),
            )
        })
        .collect();
    json!({
        "type": "object",
        "description": description,
        "additionalProperties": false,
        "properties": properties,
    })
}

fn props(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn with(mut schema: Value, extra: Value) -> Value {
    if let (Value::Object(s), Value::Object(e)) = (&mut schema, extra) {
        s.extend(e);
    }
    schema
}

fn service(partial: bool) -> Value {
    let schema = object(
        keys::SERVICE,
        props(json!({
            "build": {"$ref": "#/$defs/build"},
            "image": {"type": "string", "description": "an image reference the host's engine pulls"},
            "env": {"type": "object", "additionalProperties": {"$ref": "#/$defs/envValue"},
                "description": "container environment; `${VAR}` values that use secrets stay secret"},
            "volumes": {"type": "array", "items": {"type": "string",
                "pattern": "^([a-z0-9][a-z0-9_-]*|/[^:]*):/[^:]*(:(ro|rw))?$|\\$\\{",
                "description": "`source:target[:ro]`, source a named volume or an absolute host path"}},
            "ports": {"type": "array", "items": {"type": "string",
                "description": "`host:container` or `ip:host:container`; only nginx publishes ports"}},
            "port": {"$ref": "#/$defs/port", "description": "the port the service listens on inside the network"},
            "healthcheck": {"$ref": "#/$defs/healthcheck"},
            "depends_on": {"type": "array", "uniqueItems": true,
                "items": {"enum": keys::SERVICE_NAMES}},
            "replicas": {"type": "integer", "minimum": 1, "maximum": super::service::MAX_REPLICAS,
                "description": "the backend's tasks on an environment with `hosts:` (default: one per `app` host); not for nginx or postgres"},
        })),
        if partial {
            "fields that replace the service's own for this environment; `env` merges key by key"
        } else {
            "a service: `build` or `image`, and how it runs"
        },
    );
    if partial {
        with(schema, json!({"not": {"required": ["build", "image"]}}))
    } else {
        with(
            schema,
            json!({"oneOf": [{"required": ["build"]}, {"required": ["image"]}]}),
        )
    }
}

fn sections() -> Map<String, Value> {
    props(json!({
        "tls": {"$ref": "#/$defs/tls"},
        "firewall": {"$ref": "#/$defs/firewall"},
        "backup": {"$ref": "#/$defs/backup"},
        "checklist": {"$ref": "#/$defs/checklist"},
        "site": {"type": "string", "pattern": "^[^/~]",
            "description": "a directory of the project (relative, no `..`) nginx serves as the storefront, released per content hash"},
        "catalog": {"type": "string", "pattern": "^[^/~]",
            "description": "a catalog CSV of the project (relative, no `..`) imported through the backend's admin import at first launch"},
    }))
}

/// The JSON Schema (draft 2020-12) of stack.yaml.
#[allow(clippy::too_many_lines)]
pub fn schema() -> Value {
    let mut top = props(json!({
        "name": {"anyOf": [{"type": "string", "pattern": "^[a-z0-9-]{1,40}$"}, {"$ref": "#/$defs/interpolated"}],
            "description": "the stack's name: lowercase letters, digits and `-`, 1 to 40 characters"},
        "environments": {"type": "object", "minProperties": 1,
            "additionalProperties": {"$ref": "#/$defs/environment"},
            "description": "where the stack runs, by name (`--env NAME`)"},
        "services": {"type": "object", "additionalProperties": false,
            "required": keys::SERVICE_NAMES,
            "properties": {"nginx": {"$ref": "#/$defs/service"}, "postgres": {"$ref": "#/$defs/service"},
                "backend": {"allOf": [{"$ref": "#/$defs/service"}, {"required": ["port"]}]}}},
        "secrets": {"type": "array", "items": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
            "description": "names of variables that are secret wherever their value comes from"},
    }));
    top.extend(sections());
    let mut env = props(json!({
        "host": {"type": "string", "pattern": "^ssh://", "description": "`ssh://user@host[:port]`"},
        "hosts": {"type": "object", "additionalProperties": false, "required": keys::ROLES,
            "description": "instead of `host`: the machines of a stack across several hosts (Docker Swarm), by role; a host may play several roles",
            "properties": {
                "edge": {"$ref": "#/$defs/roleHosts", "description": "nginx, with ports 80 and 443, on every one of these"},
                "app": {"$ref": "#/$defs/roleHosts", "description": "the backend's replicas, spread across these"},
                "db": {"allOf": [{"$ref": "#/$defs/roleHosts"}, {"maxItems": 1}],
                    "description": "postgres, its volume and its backups, on this one host"},
            }},
        "bootstrap_user": {"type": "string", "pattern": "^[a-z_][a-z0-9_-]{0,31}$", "default": "root",
            "description": "the user of `vldeploy bootstrap`'s first connection: `root`, or a user with sudo (e.g. `ubuntu`)"},
        "command_timeout": {"$ref": "#/$defs/duration", "default": "10m",
            "description": "the longest any one command on the host may take before vldeploy gives up on it, naming the host and the step"},
        "ssh_key": {"type": "string", "description": "private key file; `~` and paths relative to the stack file work"},
        "ssh_agent": {"const": true, "description": "log in with the running ssh-agent"},
        "known_hosts": {"type": "string", "description": "an OpenSSH known_hosts file"},
        "host_key": {"anyOf": [{"type": "string", "pattern": "^SHA256:[A-Za-z0-9+/=_-]+$"}, {"$ref": "#/$defs/interpolated"}],
            "description": "the host key's fingerprint, `SHA256:...`"},
        "domain": {"type": "string",
            "description": "the host name nginx serves: RFC 1123 labels (IDN in punycode `xn--…`), no wildcard, scheme, port or path"},
        "env_file": {"type": "string", "description": "`KEY=VALUE` lines: variables for `${VAR}`"},
        "secrets_file": {"type": "string", "description": "`KEY=VALUE` lines: secret variables for `${VAR}`"},
        "gated": {"type": "boolean", "description": "go live only after the checklist passes"},
        "overrides": {"type": "object", "additionalProperties": false,
            "properties": {"nginx": {"$ref": "#/$defs/partialService"},
                "postgres": {"$ref": "#/$defs/partialService"}, "backend": {"$ref": "#/$defs/partialService"}}},
    }));
    env.extend(sections());
    let environment = with(
        object(
            keys::ENVIRONMENT,
            env,
            "one target host and how to reach it",
        ),
        json!({
            "required": ["domain"],
            "allOf": [
                {"oneOf": [{"required": ["host"]}, {"required": ["hosts"]}]},
                {"oneOf": [{"required": ["ssh_key"]}, {"required": ["ssh_agent"]}]},
                {"oneOf": [{"required": ["known_hosts"]}, {"required": ["host_key"]}]},
            ],
        }),
    );
    let build_map = with(
        object(
            keys::BUILD,
            props(json!({
                "context": {"type": "string"},
                "dockerfile": {"type": "string", "default": "Dockerfile"},
                "prepare": {"type": "string", "description": "a shell command run locally before the build"},
                "inputs": {"type": "array", "items": {"type": "string"}, "description": "paths and globs `prepare` reads; unchanged, it is skipped"},
                "args": {"type": "object", "additionalProperties": {"$ref": "#/$defs/envValue"}},
            })),
            "a build with options",
        ),
        json!({"required": ["context"]}),
    );
    let healthcheck = with(
        object(
            keys::HEALTHCHECK,
            props(json!({
                "command": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                "http": {"type": "string", "pattern": "^/|\\$\\{",
                    "description": "an absolute URL path with the characters RFC 3986 allows in a path and query"},
                "interval": {"$ref": "#/$defs/duration", "default": "5s"},
                "timeout": {"$ref": "#/$defs/duration", "default": "5s"},
                "retries": {"type": "integer", "minimum": 0, "default": 10},
            })),
            "`command` (run in the container) or `http` (a path on the service's port)",
        ),
        json!({"oneOf": [{"required": ["command"]}, {"required": ["http"]}]}),
    );
    let acme = with(
        object(
            keys::ACME,
            props(json!({
                "directory": {"type": "string",
                    "description": "`letsencrypt`, `letsencrypt-staging` or a directory URL"},
                "email": {"type": "string", "description": "one address, the CA's contact for the account"},
                "eab_kid": {"type": "string"},
                "eab_hmac": {"type": "string"},
                "ca_bundle": {"type": "string"},
            })),
            "certificates from an ACME CA",
        ),
        json!({"required": ["directory"], "dependentRequired": {"eab_kid": ["eab_hmac"], "eab_hmac": ["eab_kid"]}}),
    );
    let provided = with(
        object(
            keys::PROVIDED,
            props(json!({"cert": {"type": "string"}, "key": {"type": "string"}})),
            "a certificate chain and key supplied by the operator",
        ),
        json!({"required": ["cert", "key"]}),
    );
    let tls = json!({"oneOf": [
        {"const": "off"},
        with(object(keys::TLS, props(json!({"acme": acme})), "ACME"), json!({"required": ["acme"]})),
        with(object(keys::TLS, props(json!({"provided": provided})), "provided"), json!({"required": ["provided"]})),
    ]});
    let allow = with(
        object(
            keys::ALLOW,
            props(json!({
                "port": {"$ref": "#/$defs/port"},
                "proto": {"enum": ["tcp", "udp"], "default": "tcp"},
                "from": {"type": "array", "items": {"type": "string"}},
            })),
            "an inbound port to open",
        ),
        json!({"required": ["port"]}),
    );
    let firewall = object(
        keys::FIREWALL,
        props(json!({
            "allow": {"type": "array", "items": allow},
            "icmp": {"type": "boolean", "default": true},
            "must_be_closed": {"type": "array", "items": {"$ref": "#/$defs/port"}},
        })),
        "inbound rules beyond SSH, 80 and 443",
    );
    let count = json!({"type": "integer", "minimum": 0});
    let backup = object(
        keys::BACKUP,
        props(json!({
            "schedule": {"type": "string", "default": "0 2 * * *", "description": "five-field cron schedule"},
            "dir": {"type": "string", "pattern": "^/", "description": "default `/var/backups/<name>`"},
            "retention": object(keys::RETENTION,
                props(json!({"daily": count, "weekly": count, "monthly": count})), "backups kept of each kind"),
            "copy_to": {"type": "string",
                "description": "a second location: an absolute path on the host, or `[user@]host:/path` (ssh)"},
            "encrypt": {"anyOf": [{"type": "string"}, {"const": false}]},
            "archive": object(keys::ARCHIVE,
                props(json!({
                    "repo": {"type": "string",
                        "description": "pgBackRest's repository: `ssh://user@host[:port]/path` (a backup host) or an absolute path on the host"},
                    "timeout": {"$ref": "#/$defs/duration", "default": "60s",
                        "description": "archive_timeout: WAL is archived at least this often (1s to 1h)"},
                    "full": {"type": "string", "default": "0 3 * * 0", "description": "cron schedule of full backups"},
                    "diff": {"anyOf": [{"type": "string"}, {"const": false}], "default": "0 3 * * 1-6",
                        "description": "cron schedule of differential backups, or false"},
                    "retention": object(keys::ARCHIVE_RETENTION,
                        props(json!({"full": {"type": "integer", "minimum": 1, "default": 2}})),
                        "full backups kept"),
                    "encrypt_passphrase": {"type": "string",
                        "description": "the name of the secret that encrypts the repository"},
                    "repo_address": {"type": "string",
                        "description": "the backup host's address as the database host reaches it (default: the host of `repo`)"},
                    "db_address": {"type": "string",
                        "description": "the database host's address as the backup host reaches it (default: the environment's host)"},
                })),
                "continuous WAL archiving with pgBackRest"),
        })),
        "the database backup cron",
    );
    let checklist = object(
        keys::CHECKLIST,
        props(json!({
            "items": {"type": "array", "items": {"enum": keys::CHECKLIST_ITEMS}},
            "freshness": {"type": "object",
                "propertyNames": {"enum": keys::CHECKLIST_ITEMS},
                "additionalProperties": {"$ref": "#/$defs/duration"}},
        })),
        "the go-live checklist",
    );
    let mut root = object(
        keys::TOP,
        top,
        "a vldeploy stack: nginx, postgres and the backend on one host, or across several by role",
    );
    if let Value::Object(m) = &mut root {
        m.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        m.insert("title".into(), json!("vldeploy stack.yaml"));
        m.insert(
            "required".into(),
            json!(["name", "environments", "services"]),
        );
        m.insert(
            "$defs".into(),
            json!({
                "environment": environment,
                "service": service(false),
                "partialService": service(true),
                "build": {"oneOf": [{"type": "string", "description": "the build context directory"}, build_map]},
                "envValue": {"type": ["string", "number", "boolean"]},
                "interpolated": {"type": "string", "pattern": "\\$\\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\\}"},
                "port": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 65535}, {"$ref": "#/$defs/interpolated"}]},
                "duration": {"anyOf": [{"type": "string", "pattern": "^([0-9]+(ms|s|m|h|d))+$"}, {"$ref": "#/$defs/interpolated"}]},
                "healthcheck": healthcheck,
                "roleHosts": {"type": "array", "minItems": 1, "uniqueItems": true,
                    "items": {"type": "string", "pattern": "^ssh://", "description": "`ssh://user@host[:port]`"}},
                "tls": tls,
                "firewall": firewall,
                "backup": backup,
                "checklist": checklist,
            }),
        );
    }
    root
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn property_names(v: &Value) -> Vec<String> {
        v["properties"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn sorted(keys: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn every_mapping_allows_exactly_the_keys_the_loader_reads() {
        let s = schema();
        let d = &s["$defs"];
        assert_eq!(property_names(&s), sorted(keys::TOP));
        assert_eq!(property_names(&d["environment"]), sorted(keys::ENVIRONMENT));
        assert_eq!(property_names(&d["service"]), sorted(keys::SERVICE));
        assert_eq!(property_names(&d["partialService"]), sorted(keys::SERVICE));
        assert_eq!(property_names(&d["build"]["oneOf"][1]), sorted(keys::BUILD));
        assert_eq!(property_names(&d["healthcheck"]), sorted(keys::HEALTHCHECK));
        assert_eq!(property_names(&d["firewall"]), sorted(keys::FIREWALL));
        assert_eq!(
            property_names(&d["firewall"]["properties"]["allow"]["items"]),
            sorted(keys::ALLOW)
        );
        assert_eq!(property_names(&d["backup"]), sorted(keys::BACKUP));
        assert_eq!(
            property_names(&d["backup"]["properties"]["retention"]),
            sorted(keys::RETENTION)
        );
        assert_eq!(
            property_names(&d["backup"]["properties"]["archive"]),
            sorted(keys::ARCHIVE)
        );
        assert_eq!(
            property_names(&d["backup"]["properties"]["archive"]["properties"]["retention"]),
            sorted(keys::ARCHIVE_RETENTION)
        );
        assert_eq!(property_names(&d["checklist"]), sorted(keys::CHECKLIST));
        assert_eq!(
            property_names(&d["environment"]["properties"]["hosts"]),
            sorted(keys::ROLES)
        );
        let acme = &d["tls"]["oneOf"][1]["properties"]["acme"];
        assert_eq!(property_names(acme), sorted(keys::ACME));
        assert_eq!(
            property_names(&d["tls"]["oneOf"][2]["properties"]["provided"]),
            sorted(keys::PROVIDED)
        );
        for def in d.as_object().unwrap().values() {
            if def["type"] == "object" && def.get("properties").is_some() {
                assert_eq!(def["additionalProperties"], false, "{def}");
            }
        }
    }

    #[test]
    fn every_ref_resolves() {
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|x| refs(x, out));
                }
                Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
                _ => {}
            }
        }
        let s = schema();
        let mut out = Vec::new();
        refs(&s, &mut out);
        assert!(out.len() > 10);
        for r in out {
            let name = r.strip_prefix("#/$defs/").unwrap();
            assert!(s["$defs"].get(name).is_some(), "{r}");
        }
    }
}
