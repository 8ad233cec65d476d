//! The host's document store end to end: attestations written versioned, an old file still read, and a
//! corrupt or newer file failing `vldeploy check` with the file named instead of reading as "not attested".

#![allow(clippy::unwrap_used)]

use crate::support::project::Project;
use serde_json::Value;

/// The stack with only the `payment_test` item on its checklist.
fn attested_only(p: &Project) -> String {
    p.stack_yaml(|t| {
        *t = t.replacen(
            "    domain: localhost\n",
            "    domain: localhost\n    checklist:\n      items: [payment_test]\n",
            1,
        );
    })
}

/// `vldeploy check -o json`: exit code and the `payment_test` finding.
fn payment_test(p: &Project) -> (i32, Value, String) {
    let run = p.vldeploy(&["check", "-o", "json"]);
    let v: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("check -o json: {e}\n{}", run.all()));
    let finding = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["item"] == "payment_test")
        .cloned()
        .unwrap_or_else(|| panic!("no payment_test finding: {v}"));
    (run.code, finding, run.all())
}

#[test]
fn a_corrupt_attestation_file_fails_the_check_naming_the_file() {
    let p = Project::new("store_corrupt_attestations");
    p.sandbox_up(&[]);
    p.write_stack(&attested_only(&p));
    let file = format!("/var/lib/vldeploy/{}/checklist/attestations.json", p.name);

    // An operator attests; the file on the host carries its version.
    p.vldeploy(&[
        "checklist",
        "attest",
        "payment_test",
        "--note",
        "paid and refunded",
    ])
    .ok();
    let stored: Value = serde_json::from_str(&p.ssh(&format!("cat {file}")).ok().stdout).unwrap();
    assert_eq!(stored["version"], 1, "{stored}");
    assert_eq!(stored["data"]["payment_test"]["note"], "paid and refunded");
    let (code, finding, all) = payment_test(&p);
    assert_eq!(
        (code, finding["status"].as_str()),
        (0, Some("pass")),
        "{all}"
    );

    // A file written before the version field existed still reads.
    p.ssh(&format!(
        "printf '%s' '{{\"payment_test\":{{\"actor\":\"old\",\"time\":'$(date +%s)',\"note\":\"from before\"}}}}' > {file}"
    ))
    .ok();
    let (code, finding, all) = payment_test(&p);
    assert_eq!(
        (code, finding["status"].as_str()),
        (0, Some("pass")),
        "{all}"
    );
    assert!(
        finding["evidence"]
            .as_str()
            .unwrap_or("")
            .contains("from before")
            || all.contains("from before"),
        "{all}"
    );

    // A corrupt file is not "not attested yet": the check fails naming the file and the fix.
    p.ssh(&format!("printf '{{\"payment_test\": {{' > {file}"))
        .ok();
    let (code, finding, all) = payment_test(&p);
    assert_eq!(code, 1, "{all}");
    assert_eq!(finding["status"], "fail", "{all}");
    let text = finding.to_string();
    assert!(
        text.contains(&format!("the attestations file `{file}`")),
        "{text}"
    );
    assert!(text.contains("is corrupt"), "{text}");
    assert!(text.contains("move it aside"), "{text}");
    assert!(!text.contains("not attested yet"), "{text}");

    // A file from a newer vldeploy asks for an upgrade.
    p.ssh(&format!(
        "printf '%s' '{{\"version\": 9, \"data\": {{}}}}' > {file}"
    ))
    .ok();
    let (code, finding, all) = payment_test(&p);
    assert_eq!(code, 1, "{all}");
    let text = finding.to_string();
    assert!(text.contains("has version 9"), "{text}");
    assert!(text.contains("upgrade vldeploy"), "{text}");
}
