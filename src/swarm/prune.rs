//! Secrets and configs of earlier releases that no service refers to any more: each release names its own
//! (by a keyed hash of the value), so without pruning they pile up on the managers.

use std::collections::{BTreeSet, HashMap};

/// Of the stack's objects (name → ID), those neither the design nor any service (its spec or the previous
/// spec Swarm keeps to roll back to) refers to, sorted by name. Pure.
pub(super) fn unused(
    held: &HashMap<String, String>,
    wanted: &BTreeSet<String>,
    in_use: &BTreeSet<String>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = held
        .iter()
        .filter(|(name, _)| !wanted.contains(*name) && !in_use.contains(*name))
        .map(|(n, id)| (n.clone(), id.clone()))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::unused;

    #[test]
    fn what_a_service_or_its_rollback_refers_to_is_kept() {
        let held = [("a_1", "i1"), ("a_2", "i2"), ("a_3", "i3"), ("b_1", "i4")]
            .into_iter()
            .map(|(n, i)| (n.to_string(), i.to_string()))
            .collect();
        let wanted = ["a_3".to_string()].into_iter().collect();
        // a_2: the previous spec's, kept for a rollback.
        let in_use = ["a_2".to_string(), "a_3".to_string()].into_iter().collect();
        assert_eq!(
            unused(&held, &wanted, &in_use),
            vec![
                ("a_1".to_string(), "i1".to_string()),
                ("b_1".to_string(), "i4".to_string())
            ]
        );
    }
}
