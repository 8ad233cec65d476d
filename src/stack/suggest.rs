//! "Did you mean" suggestions for misspelled keys and names.

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let len = word.chars().count();
    let limit = (len / 3).max(2);
    // A candidate whose length differs by more than the limit is farther than the limit: skip it before the
    // distance, which costs the product of both lengths (a UTF-8 character takes at most 4 bytes).
    candidates
        .into_iter()
        .filter(|c| {
            *c != word && c.len() <= 4 * (len + limit) && c.chars().count().abs_diff(len) <= limit
        })
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `a`, `b` and `c`.
pub(crate) fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(|i| format!("`{i}`")).collect();
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_names_only() {
        let envs = ["sandbox", "staging", "production"];
        assert_eq!(did_you_mean("prodution", envs), Some("production"));
        assert_eq!(did_you_mean("ngnix", ["nginx", "postgres"]), Some("nginx"));
        assert_eq!(did_you_mean("imag", ["image", "build"]), Some("image"));
        assert_eq!(did_you_mean("zzz", envs), None);
        assert_eq!(list(["a", "b", "c"]), "`a`, `b` and `c`");
        assert_eq!(list(["a"]), "`a`");
    }
}
