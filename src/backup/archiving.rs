//! The state of continuous archiving read from the host: postgres' archiver row and pgBackRest's `info`.

use super::archive::{ARCHIVER_SQL, ArchiveStatus, CONTAINER_CONF, STANZA, parse_status};
use super::{BackupError, Setup};
use crate::remote::backup::{in_postgres, pgbackrest, psql};
use crate::transport::Remote;

/// What postgres and pgBackRest on `remote` say about archiving at `now` (Unix seconds), judged against
/// `archive_timeout` (`timeout_s`): what `backup status`, `doctor` and the checklist all read.
pub async fn archive_status(
    remote: &Remote,
    setup: &Setup,
    timeout_s: u64,
    now: u64,
) -> Result<ArchiveStatus, BackupError> {
    archive_status_via(remote, setup, timeout_s, now, None).await
}

/// [`archive_status`] with the repository on `backup_host` (`user@host:port`): pgBackRest's `info` that cannot
/// reach it is read as that host not answering (stalled), not as a failure to read the state.
pub async fn archive_status_via(
    remote: &Remote,
    setup: &Setup,
    timeout_s: u64,
    now: u64,
    backup_host: Option<&str>,
) -> Result<ArchiveStatus, BackupError> {
    let step = |what: &str, out: &crate::transport::Output| BackupError::Step {
        host: remote.name().to_string(),
        step: what.to_owned(),
        detail: format!("it exited with {}: {}", out.status, out.stderr_tail(5)),
    };
    let row = remote
        .exec_stdin(
            &psql(&setup.container, &setup.user, &setup.database),
            ARCHIVER_SQL.as_bytes().to_vec(),
        )
        .await?;
    if !row.success() {
        return Err(step("reading `pg_stat_archiver`", &row));
    }
    let info = in_postgres(
        &setup.container,
        // A backup host that does not answer is retried for `io-timeout`: a few seconds are enough to tell.
        &pgbackrest(
            CONTAINER_CONF,
            STANZA,
            &["--output=json", "--io-timeout=3"],
            "info",
        ),
    );
    let info = remote.exec(&info).await?;
    let (text, unreachable) = match (info.success(), backup_host) {
        (true, Some(host)) => {
            let text = info.stdout_str();
            let why = unreachable_repository(&text)
                .map(|e| format!("the backup host {host} does not answer pgBackRest: {e}"));
            (text, why)
        }
        (true, None) => (info.stdout_str(), None),
        (false, Some(host)) => (
            "[{}]".to_owned(),
            Some(format!(
                "the backup host {host} does not answer pgBackRest: {}",
                info.stderr_tail(2)
            )),
        ),
        (false, None) => return Err(step("pgBackRest `info`", &info)),
    };
    let mut status = parse_status(&row.stdout_str(), &text, now, timeout_s).map_err(|detail| {
        BackupError::Step {
            host: remote.name().to_string(),
            step: "reading the archiving state".into(),
            detail,
        }
    })?;
    status.backup_host = backup_host.map(str::to_owned);
    if let Some(why) = unreachable {
        status.stalled = true;
        status.backup_host_error = Some(why);
    }
    Ok(status)
}

/// The error of a repository pgBackRest's `info` could not reach: it exits 0 and reports it in the repository's
/// status (code 99, "other", with the connection's error). `None` when every repository answered.
pub(super) fn unreachable_repository(info: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(info).ok()?;
    v.as_array()?.iter().find_map(|stanza| {
        stanza["repo"].as_array()?.iter().find_map(|repo| {
            (repo["status"]["code"].as_u64() == Some(99)).then(|| {
                repo["status"]["message"]
                    .as_str()
                    .unwrap_or("unreachable")
                    .trim()
                    .to_owned()
            })
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_repository_info_could_not_reach_is_named_with_its_error() {
        // What pgBackRest 2.45's `info --output=json` prints on the database host with the backup host down.
        let down = r#"[{"archive":[],"backup":[],"cipher":"none","db":[],"name":"main","repo":[{"cipher":"none","key":1,"status":{"code":99,"message":"[HostConnectError] unable to connect to '172.17.0.2:8432': [111] Connection refused"}}],"status":{"code":99,"lock":{"backup":{"held":false}},"message":"other"}}]"#;
        assert_eq!(
            unreachable_repository(down).unwrap(),
            "[HostConnectError] unable to connect to '172.17.0.2:8432': [111] Connection refused"
        );
        let up = r#"[{"repo":[{"key":1,"status":{"code":0,"message":"ok"}}],"status":{"code":0}}]"#;
        assert_eq!(unreachable_repository(up), None);
        assert_eq!(unreachable_repository("not json"), None);
    }
}
