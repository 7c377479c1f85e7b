//! "Did you mean": the allowed word closest to a misspelt one.

use super::params::Param;

/// Words people write for a key or value that is not a hyperparameter, and the word they mean
/// (a hyperparameter's aliases are in its row of the table).
const ALIASES: &[(&str, &str)] = &[
    ("train_ratio", "split_ratio"),
    ("retries", "max_attempts"),
    ("attempts", "max_attempts"),
    ("fmnist", "fashion-mnist"),
    ("cifar", "cifar10"),
    ("cifar-10", "cifar10"),
    ("cifar-100", "cifar100"),
    // [experiment.stopping] and [experiment.sample], as Ray Tune and Optuna name them.
    ("grace_period", "min_epochs"),
    ("reduction_factor", "reduction"),
    ("eta", "reduction"),
    ("min_samples_required", "min_trials"),
    ("maximize", "max"),
    ("minimize", "min"),
    ("num_samples", "trials"),
    ("n_trials", "trials"),
    ("sampler", "method"),
];

/// The word that `norm` (normalised) is an alias of, if it is one.
fn alias_of(norm: &str) -> Option<&'static str> {
    let table = Param::ALL
        .into_iter()
        .flat_map(|p| p.def().aliases.iter().map(move |a| (*a, p.key())));
    ALIASES
        .iter()
        .copied()
        .chain(table)
        .find(|(alias, _)| normalise(alias) == norm)
        .map(|(_, target)| target)
}

/// Real names of other things, close to ours by spelling but not typos of them.
const NOT_TYPOS: &[&str] = &[
    "elu",
    "gelu",
    "selu",
    "silu",
    "swish",
    "mish",
    "softplus",
    "leaky_relu",
];

/// The candidate `given` most likely stands for, if one is close enough: the same word but for
/// case, `-` and `_`; a known alias; an abbreviation (the letters of a candidate, in order,
/// starting with its first); or within a small edit distance.
pub(crate) fn closest<'a>(given: &str, candidates: &[&'a str]) -> Option<&'a str> {
    if given.is_empty() || given.len() > 64 {
        return None;
    }
    let norm = normalise(given);
    if NOT_TYPOS.contains(&norm.as_str()) {
        return None;
    }
    if let Some(c) = candidates.iter().find(|c| normalise(c) == norm) {
        return Some(c);
    }
    if let Some(c) = alias_of(&norm).and_then(|target| candidates.iter().find(|c| **c == target)) {
        return Some(c);
    }
    let best = candidates
        .iter()
        .map(|c| (distance(&norm, &normalise(c)), *c))
        .min_by_key(|(d, _)| *d);
    let limit = (norm.chars().count() / 3).max(1);
    if let Some((d, c)) = best
        && d <= limit
    {
        return Some(c);
    }
    if norm.chars().count() >= 3 {
        return candidates
            .iter()
            .find(|c| abbreviates(&norm, &normalise(c)))
            .copied();
    }
    None
}

/// `" (did you mean `x`?)"`, empty when nothing is close.
pub(crate) fn did_you_mean(given: &str, candidates: &[&str], quote: Quote) -> String {
    match closest(given, candidates) {
        Some(c) => match quote {
            Quote::Backtick => format!(" (did you mean `{c}`?)"),
            Quote::Double => format!(" (did you mean {c:?}?)"),
            Quote::Brace => format!(" (did you mean {{{c}}}?)"),
        },
        None => String::new(),
    }
}

/// How a suggestion is quoted: like the word it replaces.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Quote {
    /// A key: `learning_rate`.
    Backtick,
    /// A string value: "cifar10".
    Double,
    /// A placeholder: {learning_rate}.
    Brace,
}

fn normalise(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// True when `short` is an abbreviation of `long`: same first letter, its letters in order.
fn abbreviates(short: &str, long: &str) -> bool {
    if short.len() >= long.len() || short.chars().next() != long.chars().next() {
        return false;
    }
    let mut rest = long.chars();
    short.chars().all(|c| rest.any(|l| l == c))
}

/// Optimal-string-alignment distance (edits, with adjacent transpositions counted as one).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: &[&str] = &Param::KEYS;

    #[test]
    fn finds_what_people_mistype() {
        for (given, expected) in [
            ("learning_rat", Some("learning_rate")),
            ("Learning_Rate", Some("learning_rate")),
            ("hidden-layers", Some("hidden_layers")),
            ("activations", Some("activation")),
            ("lr", Some("learning_rate")),
            ("epoch", Some("epochs")),
            ("seeds", Some("seed")),
            ("batchsize", Some("batch_size")),
            ("hidden_lyaers", Some("hidden_layers")),
            ("temperature", None),
            ("x", None),
            ("", None),
        ] {
            assert_eq!(closest(given, PARAMS), expected, "{given}");
        }
        assert_eq!(closest("cols", &["rows", "columns"]), Some("columns"));
        assert_eq!(
            closest("fashion_mnist", &["fashion-mnist", "cifar10"]),
            Some("fashion-mnist")
        );
        assert_eq!(
            closest("CIFAR-10", &["fashion-mnist", "cifar10"]),
            Some("cifar10")
        );
        assert_eq!(
            closest("sigmod", &["relu", "tanh", "sigmoid"]),
            Some("sigmoid")
        );
        assert_eq!(closest("gelu", &["relu", "tanh", "sigmoid"]), None);
        assert_eq!(closest("mnist", &["fashion-mnist", "cifar10"]), None);
        let all = ["fashion-mnist", "cifar10", "mnist", "cifar100"];
        assert_eq!(closest("MNIST", &all), Some("mnist"));
        assert_eq!(closest("CIFAR-100", &all), Some("cifar100"));
    }

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("abc", "abc"), 0);
        assert_eq!(distance("abc", "acb"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
