//! Property tests of the grid parser on hostile input: arbitrary bytes and text, TOML-shaped
//! random files that reach the validation of every key, and valid grids mutated at random.
//!
//! Whatever the input: parsing never panics; an error names the file and a line and column
//! inside it, and prints no control character; a grid that parses keeps the expansion's
//! invariants (size is the product of the axes, ids unique and content-derived, names unique).
//!
//! `PROPTEST_CASES=100000 cargo test --release -p sweep-common --test grid_properties` runs them
//! longer; the cargo-fuzz targets in `fuzz/` explore the same space with coverage guidance.

mod support;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use support::grid::ORIGIN;
use sweep_common::grid::{Bound, Domain, Grid, GridError, Param};

/// Valid grids that the mutation tests start from.
const VALID: &[&str] = &[
    include_str!("../../lab1.toml"),
    r#"[sweep]
name = "small"
seed = 1
max_attempts = 3
max_trials = 50

[[experiment]]
name = "cifar"
title = "CIFAR-10 fixture"
dataset = "cifar10"
trial_name = "c_{activation}_{hidden_layers}"
split_ratio = 0.5
checkpoint_every = 0
table = { rows = "hidden_layers", columns = "activation" }

[experiment.fixed]
hidden_width = 32
batch_size = 32
epochs = 2
learning_rate = 0.01

[experiment.grid]
activation = ["relu", "tanh"]
hidden_layers = [1, 2]

[[experiment]]
name = "fashion"
dataset = "fashion-mnist"
trial_name = "f_{train_fraction}_{seed}"

[experiment.grid]
train_fraction = [0.5, 1.0]
seed = [1, 2, 3]
"#,
];

/// Cases per property: 512, or `PROPTEST_CASES`.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

fn check(text: &str, result: &Result<Grid, GridError>) -> Result<(), TestCaseError> {
    support::grid::check(text, result).map_err(TestCaseError::fail)
}

/// Pieces of TOML that grid files are made of: headers, keys, values, punctuation.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("[sweep]\n".to_owned()),
        Just("[[sweep]]\n".to_owned()),
        Just("[[experiment]]\n".to_owned()),
        Just("[experiment]\n".to_owned()),
        Just("[experiment.fixed]\n".to_owned()),
        Just("[experiment.grid]\n".to_owned()),
        Just("[[experiment.grid]]\n".to_owned()),
        key().prop_map(|k| format!("{k} = ")),
        value(),
        prop::sample::select(vec![
            "\n", " ", ",", "[", "]", "{", "}", "=", "\"", "'", "#", ".", "\r\n", "\t", "\\", "{}",
            "\"\"\"", "'''", "\u{feff}", "é", "\u{1b}",
        ])
        .prop_map(str::to_owned),
    ]
}

/// Keys a grid file has, and near misses.
fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "name",
        "seed",
        "max_attempts",
        "max_trials",
        "experiment",
        "title",
        "dataset",
        "trial_name",
        "split_ratio",
        "checkpoint_every",
        "table",
        "fixed",
        "grid",
        "rows",
        "columns",
        "activation",
        "hidden_layers",
        "hidden_width",
        "learning_rate",
        "batch_size",
        "epochs",
        "train_fraction",
        "lr",
        "Epochs",
        "experiment.fixed.epochs",
        "\"quoted key\"",
        "a.b.c",
    ])
    .prop_map(str::to_owned)
}

/// Values of every type, at and beyond the limits.
fn value() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        prop::sample::select(vec![
            "0",
            "1",
            "-1",
            "64",
            "65",
            "100000",
            "100001",
            "1048577",
            "9223372036854775807",
            "-9223372036854775808",
            "18446744073709551616",
            "99999999999999999999999999",
            "0x7fffffffffffffff",
            "0.0",
            "-0.0",
            "1.0",
            "0.5",
            "1e-3",
            "10.0",
            "1e400",
            "nan",
            "-inf",
            "inf",
            "true",
            "1979-05-27",
            "\"relu\"",
            "\"tanh\"",
            "\"sigmoid\"",
            "\"gelu\"",
            "\"cifar10\"",
            "\"fashion-mnist\"",
            "\"\"",
            "\"..\"",
            "\"{activation}_{seed}\"",
            "\"{nope}\"",
            "\"{\"",
            "\"}\"",
            "\"a\\u0000b\"",
            "\"hidden_layers\"",
            "\"seed\"",
        ])
        .prop_map(str::to_owned),
        any::<i64>().prop_map(|i| i.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        "[a-z_{}]{0,12}".prop_map(|s| format!("{s:?}")),
    ];
    scalar.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((key(), inner), 0..3).prop_map(|kv| {
                let pairs: Vec<String> = kv.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("{{ {} }}", pairs.join(", "))
            }),
        ]
    })
}

/// A TOML-shaped file: a valid head, then lines of random headers and `key = value` pairs.
fn toml_like() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        3 => (key(), value()).prop_map(|(k, v)| format!("{k} = {v}\n")),
        1 => token(),
    ];
    (any::<bool>(), prop::collection::vec(line, 0..30)).prop_map(|(head, lines)| {
        let mut text = String::new();
        if head {
            text.push_str(
                "[sweep]\nname = \"s\"\n[[experiment]]\nname = \"e\"\ndataset = \"cifar10\"\n",
            );
        }
        text.extend(lines);
        text
    })
}

/// A plausible value for `key`: mostly in range, sometimes at or past a limit, sometimes of
/// any type.
fn plausible(key: &'static str) -> BoxedStrategy<String> {
    let (good, bad): (&[&'static str], &[&'static str]) = match key {
        "name" => (
            &["\"s\"", "\"e1\"", "\"e2\"", "\"e3\""],
            &["\"..\"", "\"a b\"", "\"\""],
        ),
        "seed" => (&["0", "1", "2", "3"], &["-1", "9223372036854775807"]),
        "max_attempts" => (&["1", "3", "100"], &["0", "101"]),
        "max_trials" => (&["4", "12", "100", "10000000"], &["0", "1", "10000001"]),
        "title" => (&["\"A title\"", "\"\""], &["\"\\u0007\""]),
        "dataset" => (&["\"cifar10\"", "\"fashion-mnist\""], &["\"mnist\""]),
        "trial_name" => (
            &[
                "\"{experiment}_{activation}_{hidden_layers}_{hidden_width}_{learning_rate}_{batch_size}_{epochs}_{train_fraction}_{seed}\"",
                "\"{activation}{seed}\"",
                "\"{experiment}\"",
            ],
            &["\"t\"", "\"{lr}\"", "\"{\""],
        ),
        "split_ratio" => (&["0.5", "0.7", "0.999"], &["1.0", "0"]),
        "checkpoint_every" => (&["0", "1", "3", "100000"], &["100001", "-1"]),
        "table" => {
            return (param(), param())
                .prop_map(|(r, c)| format!("{{ rows = \"{r}\", columns = \"{c}\" }}"))
                .boxed();
        }
        "activation" => (&["\"relu\"", "\"tanh\"", "\"sigmoid\""], &["\"ReLU\""]),
        "hidden_layers" => (&["0", "1", "2", "64"], &["65", "-1"]),
        "hidden_width" => (&["1", "16", "65536"], &["0", "65537"]),
        "learning_rate" => (&["0.001", "0.1", "1", "10.0"], &["0.0", "10.5", "nan"]),
        "batch_size" => (&["1", "32", "1048576"], &["0", "1048577"]),
        "epochs" => (&["1", "2", "100000"], &["0", "100001"]),
        "train_fraction" => (&["0.25", "0.5", "1.0"], &["0.0", "1.5", "20"]),
        _ => match Param::from_key(key) {
            Some(p) => return from_domain(&p.def().domain),
            None => return value().boxed(),
        },
    };
    prop_oneof![
        60 => prop::sample::select(good.to_vec()).prop_map(str::to_owned),
        1 => prop::sample::select(bad.to_vec()).prop_map(str::to_owned),
        1 => value(),
    ]
    .boxed()
}

/// A plausible value of a hyperparameter the cases above do not list (one added since), from
/// its row of the table: its bounds and a value inside, or just past them.
fn from_domain(domain: &Domain) -> BoxedStrategy<String> {
    let (good, bad) = domain_values(domain);
    prop_oneof![
        60 => prop::sample::select(good),
        1 => prop::sample::select(bad),
        1 => value(),
    ]
    .boxed()
}

/// Values inside `domain` and values just outside it, as TOML.
fn domain_values(domain: &Domain) -> (Vec<String>, Vec<String>) {
    let number = |x: f64| format!("{x:?}");
    let (good, bad): (Vec<String>, Vec<String>) = match *domain {
        Domain::Choice(choices) => (
            choices.iter().map(|c| format!("{:?}", c.name)).collect(),
            vec!["\"nope\"".to_owned()],
        ),
        Domain::Int { min, max } => (
            vec![min.to_string(), max.to_string()],
            vec![
                (i128::from(max) + 1).to_string(),
                (i128::from(min) - 1).to_string(),
            ],
        ),
        Domain::Float { min, max } => {
            let (Bound::Closed(lo) | Bound::Open(lo)) = min;
            let (Bound::Closed(hi) | Bound::Open(hi)) = max;
            let mut good = vec![number((lo + hi) / 2.0)];
            good.extend(
                [(min, lo), (max, hi)]
                    .iter()
                    .filter(|(b, _)| matches!(b, Bound::Closed(_)))
                    .map(|(_, x)| number(*x)),
            );
            (good, vec![number(hi + 1.0), "nan".to_owned()])
        }
        Domain::Fraction => (
            vec!["0.5".to_owned(), "1.0".to_owned()],
            vec!["0.0".to_owned(), "1.5".to_owned()],
        ),
        // Models that fit both datasets' images, and ones that fit neither.
        Domain::Model => (
            vec![
                "\"mlp\"".to_owned(),
                "\"conv(2,3) bn relu gap linear(10)\"".to_owned(),
            ],
            vec!["\"nope\"".to_owned(), "\"conv(2,3) linear(10)\"".to_owned()],
        ),
    };
    (good, bad)
}

#[test]
fn values_from_the_table_are_inside_and_outside_their_domains() {
    let head = "[sweep]\nname = \"s\"\n[[experiment]]\nname = \"e\"\ndataset = \"cifar10\"\n";
    for p in Param::ALL {
        let (good, bad) = domain_values(&p.def().domain);
        for v in good {
            let text = format!("{head}[experiment.fixed]\n{p} = {v}\n");
            assert!(Grid::parse(&text, "t.toml").is_ok(), "{p} = {v}");
        }
        for v in bad {
            let text = format!("{head}[experiment.fixed]\n{p} = {v}\n");
            assert!(Grid::parse(&text, "t.toml").is_err(), "{p} = {v}");
        }
    }
}

fn param() -> impl Strategy<Value = &'static str> {
    prop::sample::select(PARAMS.to_vec())
}

/// Every hyperparameter's key, from the table.
const PARAMS: &[&str] = &Param::KEYS;

/// `key = value` lines for the `required` keys and a subset of the `optional` ones; for an axis
/// table, lists of values.
fn table(
    required: &'static [&'static str],
    optional: &'static [&'static str],
    lists: bool,
) -> BoxedStrategy<String> {
    prop::sample::subsequence(optional.to_vec(), 0..=optional.len())
        .prop_flat_map(move |chosen| {
            required
                .iter()
                .copied()
                .chain(chosen)
                .map(|k| {
                    let v: BoxedStrategy<String> = if lists {
                        prop_oneof![
                            30 => prop::collection::vec(plausible(k), 0..4)
                                .prop_map(|v| format!("[{}]", v.join(", "))),
                            1 => value(),
                        ]
                        .boxed()
                    } else {
                        plausible(k)
                    };
                    v.prop_map(move |v| format!("{k} = {v}\n"))
                })
                .collect::<Vec<_>>()
        })
        .prop_map(|lines| lines.concat())
        .boxed()
}

/// Syntactically valid TOML in the grid file's layout, with plausible or random values: this
/// reaches the checks of every key and the expansion itself.
fn structured() -> impl Strategy<Value = String> {
    const SWEEP: &[&str] = &["seed", "max_attempts", "max_trials"];
    const EXPERIMENT: &[&str] = &[
        "title",
        "trial_name",
        "split_ratio",
        "checkpoint_every",
        "table",
    ];
    let experiment = (
        table(&["name", "dataset"], EXPERIMENT, false),
        prop::option::of(table(&[], PARAMS, false)),
        prop::option::of(table(&[], PARAMS, true)),
    )
        .prop_map(|(keys, fixed, grid)| {
            let mut text = format!("[[experiment]]\n{keys}");
            if let Some(fixed) = fixed {
                text.push_str(&format!("[experiment.fixed]\n{fixed}"));
            }
            if let Some(grid) = grid {
                text.push_str(&format!("[experiment.grid]\n{grid}"));
            }
            text
        });
    (
        table(&["name"], SWEEP, false),
        prop::collection::vec(experiment, 1..4),
    )
        .prop_map(|(sweep, experiments)| format!("[sweep]\n{sweep}{}", experiments.concat()))
}

/// An edit of a text.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, String),
    Delete(usize, usize),
    Replace(usize, usize, String),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let at = 0usize..4000;
    prop_oneof![
        (at.clone(), token()).prop_map(|(p, s)| Edit::Insert(p, s)),
        (at.clone(), 1usize..40).prop_map(|(p, n)| Edit::Delete(p, n)),
        (at.clone(), 1usize..12, token()).prop_map(|(p, n, s)| Edit::Replace(p, n, s)),
        (0usize..80).prop_map(Edit::DuplicateLine),
        (0usize..80, 0usize..80).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        at.prop_map(Edit::Truncate),
    ]
}

/// The nearest char boundary at or before `p`.
fn floor(text: &str, p: usize) -> usize {
    let mut p = p.min(text.len());
    while !text.is_char_boundary(p) {
        p -= 1;
    }
    p
}

fn apply(text: &mut String, edit: &Edit) {
    match edit {
        Edit::Insert(p, s) => {
            let p = floor(text, *p);
            text.insert_str(p, s);
        }
        Edit::Delete(p, n) => {
            let a = floor(text, *p);
            let b = floor(text, a + n);
            text.replace_range(a..b, "");
        }
        Edit::Replace(p, n, s) => {
            let a = floor(text, *p);
            let b = floor(text, a + n);
            text.replace_range(a..b, s);
        }
        Edit::DuplicateLine(i) => {
            let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
            let i = i % lines.len();
            lines.insert(i, lines[i].clone());
            *text = lines.join("\n");
        }
        Edit::SwapLines(a, b) => {
            let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
            let n = lines.len();
            lines.swap(a % n, b % n);
            *text = lines.join("\n");
        }
        Edit::Truncate(p) => {
            let p = floor(text, *p);
            text.truncate(p);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Arbitrary bytes: never a panic; invalid UTF-8 is located like any other error.
    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let shown = String::from_utf8_lossy(&bytes).into_owned();
        let result = Grid::from_bytes(bytes, ORIGIN);
        check(&shown, &result)?;
    }

    /// Arbitrary text, control characters included.
    #[test]
    fn arbitrary_text(text in "(?s).{0,600}") {
        check(&text, &Grid::parse(&text, ORIGIN))?;
    }

    /// Random TOML made of the grid file's own keys and values at and beyond their limits.
    #[test]
    fn toml_shaped_text(text in toml_like()) {
        check(&text, &Grid::parse(&text, ORIGIN))?;
    }

    /// Grid files of the right layout with plausible and random values.
    #[test]
    fn structured_grids(text in structured()) {
        check(&text, &Grid::parse(&text, ORIGIN))?;
    }

    /// Valid grids edited at random: inserted, deleted and replaced pieces, duplicated and
    /// swapped lines, truncation.
    #[test]
    fn mutated_valid_grids(
        base in prop::sample::select(VALID.to_vec()),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let mut text = base.to_owned();
        for e in &edits {
            apply(&mut text, e);
        }
        check(&text, &Grid::parse(&text, ORIGIN))?;
    }
}

/// The bases parse, so the mutation tests start from valid grids.
#[test]
fn valid_bases_parse() {
    for base in VALID {
        let grid = Grid::parse(base, ORIGIN).unwrap_or_else(|e| panic!("{e}"));
        support::grid::check_grid(&grid).unwrap_or_else(|e| panic!("{e}"));
    }
}
