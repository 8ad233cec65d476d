//! `vldeploy checklist attest ITEM --note`: record a hand-checked item, with who, when and the note; audited
//! (on a swarm, on its first host).

use super::context::Audited;
use super::{CommandError, Context};
use crate::checklist::{ATTESTED_ITEMS, Attestation};
use crate::cli::{ChecklistAction, Output};

pub(crate) async fn checklist(
    ctx: &Context,
    action: &ChecklistAction,
) -> Result<i32, CommandError> {
    match action {
        ChecklistAction::Attest { item, note } => attest(ctx, item, note).await,
    }
}

async fn attest(ctx: &Context, item: &str, note: &str) -> Result<i32, CommandError> {
    if !ATTESTED_ITEMS.contains(&item) {
        let probed = crate::stack::CHECKLIST_ITEMS.contains(&item);
        return Err(CommandError::Usage(if probed {
            format!(
                "`{item}` is checked by a probe, not attested: `vldeploy check` runs it\n  help: the attested items are {}",
                ATTESTED_ITEMS.join(", ")
            )
        } else {
            let hint = crate::stack::did_you_mean(item, ATTESTED_ITEMS.iter().copied())
                .map_or_else(
                    || format!("the attested items are {}", ATTESTED_ITEMS.join(", ")),
                    |s| format!("did you mean `{s}`?"),
                );
            format!("no checklist item `{item}`\n  help: {hint}")
        }));
    }
    if note.trim().is_empty() {
        return Err(CommandError::Usage(format!(
            "an attestation needs a note saying what was checked: `vldeploy checklist attest {item} --note \"…\"`"
        )));
    }
    // A note is free text: it must never carry a secret into the host's files.
    let note = crate::secret::scrub(note.trim(), &ctx.stack.secrets);
    // On a swarm, attestations are kept on its first host, beside the cluster's lock and audit log.
    let c = ctx.connect_keeper().await?;
    let attestation = Attestation {
        actor: crate::state::actor(),
        time: crate::state::now(),
        note: note.clone(),
    };
    let command = format!("checklist attest {item}");
    ctx.locked_audited(&c, &command, || async {
        let result =
            crate::checklist::attest(&c.remote, &ctx.stack.name, item, attestation.clone())
                .await
                .map(|()| 0)
                .map_err(CommandError::from);
        if result.is_ok() {
            match ctx.output {
                Output::Human => println!(
                    "{item} attested by {} on {}: \"{note}\"",
                    attestation.actor,
                    ctx.target_name()
                ),
                Output::Json => println!(
                    "{}",
                    serde_json::json!({"item": item, "actor": attestation.actor,
                        "time": attestation.time, "note": note})
                ),
            }
        }
        (
            Audited {
                changes: vec![format!("attested `{item}`")],
                note: Some(note.clone()),
                ..Audited::default()
            },
            result,
        )
    })
    .await
}
