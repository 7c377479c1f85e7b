//! Tests of grid parsing, validation and expansion.

use proptest::prelude::*;

use super::*;
use crate::trial::Activation;

const LAB1: &str = include_str!("../../../lab1.toml");

fn parse(text: &str) -> Result<Grid, GridError> {
    Grid::parse(text, "test.toml")
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const HEAD: &str =
    "[sweep]\nname = \"s\"\n[[experiment]]\nname = \"e\"\ndataset = \"fashion-mnist\"\n";

#[test]
fn lab1_expands_to_the_lab() {
    let g = parse(LAB1).unwrap();
    assert_eq!(g.name, "lab1");
    assert_eq!(g.len(), 14);
    let p1 = g.experiment("p1_cifar10").unwrap();
    assert_eq!(p1.dataset, DatasetKind::Cifar10);
    assert_eq!(p1.trials.len(), 9);
    assert_eq!(p1.axes.len(), 2);
    assert_eq!(p1.axes[0].param, Param::Activation);
    assert_eq!(p1.axes[0].values, ["ReLU", "Tanh", "Sigmoid"]);
    assert_eq!(p1.axes[1].param, Param::HiddenLayers);
    let names: Vec<&str> = p1.trials.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names[0], "Lab1_P1_HiddenL_1_Activation_ReLU");
    assert_eq!(names[1], "Lab1_P1_HiddenL_2_Activation_ReLU");
    assert_eq!(names[8], "Lab1_P1_HiddenL_3_Activation_Sigmoid");
    for t in &p1.trials {
        assert_eq!(t.params.hidden_width, 1024);
        assert_eq!(t.params.batch_size, 128);
        assert_eq!(t.params.epochs, 20);
        assert_eq!(t.params.learning_rate, 0.001);
        assert_eq!(t.params.train_fraction, 1.0);
        assert_eq!(t.split.train_ratio, 0.7);
        assert_eq!(t.content_id(), t.id);
    }
    let p2 = g.experiment("p2_fashion_mnist").unwrap();
    let names: Vec<&str> = p2.trials.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Lab1_P2_TrainingRatioSplit_0.2",
            "Lab1_P2_TrainingRatioSplit_0.4",
            "Lab1_P2_TrainingRatioSplit_0.6",
            "Lab1_P2_TrainingRatioSplit_0.8",
            "Lab1_P2_TrainingRatioSplit_1"
        ]
    );
    for t in &p2.trials {
        assert_eq!(t.dataset, DatasetKind::FashionMnist);
        assert_eq!(t.params.activation, Activation::Relu);
        assert_eq!((t.params.hidden_layers, t.params.hidden_width), (1, 256));
        assert_eq!((t.params.batch_size, t.params.epochs), (64, 30));
    }
    assert_eq!(p2.trials[0].train_subset_len(60_000), 8_400);
}

/// Trial ids are the UUID v5 of `sweep-trial-v1` canonical text: a state directory resumes
/// only if the same grid gives the same ids. These are lab1.toml's, in expansion order, as
/// every version since the first computed them.
#[test]
fn lab1_keeps_its_trial_ids() {
    let g = parse(LAB1).unwrap();
    let ids: Vec<String> = g.trials().map(|t| t.id.to_string()).collect();
    assert_eq!(
        ids,
        [
            "34886a94-44ae-5cb9-a2f5-e1d98a5ddc1d",
            "cbe841d8-5187-5cbe-8b4e-d42bb0b9647b",
            "22eecff4-022a-5f7d-8f8e-de945bee8308",
            "ee2a7983-5079-5f02-8bd2-3f3ebad9eea6",
            "04c9dd59-5e1f-5858-98ad-ba45e857d732",
            "b8e0c64b-d9db-543b-b431-d76f04c9dee6",
            "311e7ac8-8a69-5378-8984-60ab2b0ffc03",
            "b9c69a2f-e1ad-5bfe-85f2-6ad267aedfaf",
            "8cd0a863-80a9-5dbe-8f4b-efa1442cdf15",
            "de1d26f6-0a02-51eb-b7a8-bd7eeda2d8da",
            "471fb7b9-8a61-52b0-aaa8-48b4afcdbf66",
            "2018236d-3f89-5084-9726-848880d2bde2",
            "fc5c5d59-5959-5e34-b0bb-dcd1146c29eb",
            "c5cdf95d-1f9d-5bf0-9b5e-1100549d69ca",
        ]
    );
}

/// The README's table of hyperparameters has a row for every row of the table.
#[test]
fn readme_lists_every_hyperparameter() {
    let readme = include_str!("../../../README.md");
    for p in Param::ALL {
        let row = format!("\n| `{}` | ", p.key());
        assert!(readme.contains(&row), "README.md has no row for {p}");
    }
}

#[test]
fn table_layout_names_two_grid_axes() {
    let grid = "[experiment.grid]\nactivation = [\"relu\", \"tanh\"]\nhidden_layers = [1, 2]\nbatch_size = [32, 64]\nseed = [1, 2]\n";
    let ok =
        format!("{HEAD}table = {{ rows = \"hidden_layers\", columns = \"activation\" }}\n{grid}");
    let g = parse(&ok).unwrap();
    assert_eq!(
        g.experiments[0].table,
        Some(TableLayout {
            rows: Param::HiddenLayers,
            columns: Param::Activation
        })
    );
    assert_eq!(
        parse(&format!("{HEAD}{grid}")).unwrap().experiments[0].table,
        None
    );
    for (table, expected) in [
        (
            "{ rows = \"seed\", columns = \"activation\" }",
            "experiment[0].table.rows: seed cannot lay out a table (tables average over seeds); allowed: the experiment's grid axes \"activation\", \"hidden_layers\" or \"batch_size\"",
        ),
        (
            "{ rows = \"epochs\", columns = \"activation\" }",
            "experiment[0].table.rows: \"epochs\" is not a grid axis",
        ),
        (
            "{ rows = \"activation\", columns = \"activation\" }",
            "experiment[0].table.columns: rows and columns must be different axes",
        ),
        ("{ rows = \"activation\" }", "missing key `columns`"),
        (
            "{ rows = \"activation\", columns = \"batch_size\", depth = 1 }",
            "unknown key `depth`",
        ),
    ] {
        let message = err(&format!("{HEAD}table = {table}\n{grid}"));
        assert!(message.contains(expected), "{message}");
    }
}

#[test]
fn select_keeps_the_named_experiments() {
    let mut g = parse(LAB1).unwrap();
    let e = g.select(&["nope".to_owned()]).unwrap_err().to_string();
    assert!(e.contains("p1_cifar10, p2_fashion_mnist"), "{e}");
    g.select(&["p2_fashion_mnist".to_owned()]).unwrap();
    assert_eq!(g.len(), 5);
}

#[test]
fn ids_ignore_key_order_and_names() {
    let a = format!(
        "{HEAD}trial_name = \"x{{activation}}{{seed}}\"\n[experiment.grid]\nactivation = [\"relu\", \"tanh\"]\nseed = [1, 2]\n"
    );
    let b = format!("{HEAD}[experiment.grid]\nseed = [1, 2]\nactivation = [\"relu\", \"tanh\"]\n");
    let ga = parse(&a).unwrap();
    let gb = parse(&b).unwrap();
    let ids = |g: &Grid| g.trials().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(ids(&ga), ids(&gb));
    assert_eq!(ga.trials().count(), 4);
    // Changing a value that matters changes the id.
    let c = b.replace("seed = [1, 2]", "seed = [1, 3]");
    let gc = parse(&c).unwrap();
    assert_eq!(ids(&gc)[0], ids(&gb)[0]);
    assert_ne!(ids(&gc)[1], ids(&gb)[1]);
}

#[test]
fn defaults_fill_unset_parameters() {
    let g = parse(HEAD).unwrap();
    let t = g.trials().next().unwrap();
    assert_eq!(t.name, "e");
    assert_eq!(t.params.activation, Activation::Relu);
    assert_eq!(t.params.hidden_layers, 1);
    assert_eq!(t.params.hidden_width, 256);
    assert_eq!(t.params.batch_size, 64);
    assert_eq!(t.params.seed, 0);
    assert_eq!(g.max_attempts, DEFAULT_MAX_ATTEMPTS);
}

#[test]
fn errors_name_file_line_column_and_key() {
    let cases: &[(String, &str)] = &[
        (
            format!("{HEAD}lr = 1\n"),
            "test.toml:6:1: experiment[0].lr: unknown key `lr`",
        ),
        (
            format!("{HEAD}[experiment.fixed]\nlearning_rate = -0.1\n"),
            "test.toml:7:17: experiment[0].fixed.learning_rate: must be a number greater than 0",
        ),
        (
            format!("{HEAD}[experiment.grid]\nactivation = [\"relu\", \"gelu\"]\n"),
            "test.toml:7:23: experiment[0].grid.activation[1]: unknown activation \"gelu\"; allowed: relu, tanh, sigmoid",
        ),
        (
            format!("{HEAD}[experiment.grid]\nepochs = []\n"),
            "test.toml:7:10: experiment[0].grid.epochs: an axis needs at least one value",
        ),
        (
            format!("{HEAD}[experiment.grid]\nepochs = [1, 2, 1]\n"),
            "test.toml:7:17: experiment[0].grid.epochs[2]: duplicate value 1 (already at index 0)",
        ),
        (
            format!("{HEAD}[experiment.fixed]\nepochs = 0\n"),
            "experiment[0].fixed.epochs: must be an integer from 1 to 100000, got 0",
        ),
        (
            format!("{HEAD}[experiment.fixed]\ntrain_fraction = 1.5\n"),
            "experiment[0].fixed.train_fraction: must be a fraction in (0, 1], got 1.5",
        ),
        (
            format!("{HEAD}[experiment.fixed]\nlearning_rate = nan\n"),
            "experiment[0].fixed.learning_rate: must be a number greater than 0",
        ),
        (
            format!("{HEAD}[experiment.fixed]\nepochs = \"3\"\n"),
            "test.toml:7:10: experiment[0].fixed.epochs: must be an integer from 1 to 100000, got \"3\"; remove the quotes",
        ),
        (
            format!("{HEAD}[experiment.fixed]\nepochs = 3\n[experiment.grid]\nepochs = [1, 2]\n"),
            "experiment[0].grid.epochs: epochs is both fixed and a grid axis",
        ),
        (
            HEAD.replace("fashion-mnist", "svhn"),
            "test.toml:5:11: experiment[0].dataset: unknown dataset \"svhn\"; allowed: fashion-mnist, cifar10, mnist, cifar100",
        ),
        (
            format!("{HEAD}trial_name = \"{{nope}}\"\n"),
            "experiment[0].trial_name: unknown placeholder {nope}",
        ),
        (
            format!("{HEAD}trial_name = \"same\"\n[experiment.grid]\nseed = [1, 2]\n"),
            "experiment[0].trial_name: two trials of this experiment are named \"same\"",
        ),
        (
            "[sweep]\nname = \"s\"\n".to_owned(),
            "test.toml:1:1: experiment: no [[experiment]] table",
        ),
        (
            format!("{HEAD}[[experiment]]\nname = \"e\"\ndataset = \"cifar10\"\n"),
            "test.toml:7:8: experiment[1].name: duplicate experiment name \"e\"",
        ),
        (
            format!("{HEAD}split_ratio = 1.0\n"),
            "experiment[0].split_ratio: must be a fraction in (0, 1)",
        ),
        (
            HEAD.replace("name = \"s\"", "name = \"a b\""),
            "test.toml:2:8: sweep.name: invalid name \"a b\"",
        ),
        (
            format!("{HEAD}[experiment.fixed]\nseed = 99999999999999999999\n"),
            "test.toml:7:8",
        ),
        (
            format!("{HEAD}[experiment.grid]\nseed = [1, 2, 3]\nhidden_width = [1, 2, 3]\n")
                .replace("[sweep]\n", "[sweep]\nmax_trials = 8\n"),
            "experiment[0].grid: expands to 9 trials (3 x 3 values of hidden_width, seed), more than sweep.max_trials = 8",
        ),
    ];
    for (text, expected) in cases {
        let message = err(text);
        assert!(
            message.contains(expected),
            "for:\n{text}\nexpected the error to contain:\n  {expected}\ngot:\n  {message}"
        );
        assert!(message.starts_with("test.toml:"), "{message}");
    }
}

#[test]
fn invalid_utf8_names_the_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let mut bytes = b"[sweep]\nname = \"".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    std::fs::write(&path, bytes).unwrap();
    let e = Grid::from_file(&path).unwrap_err().to_string();
    assert!(e.contains("bad.toml:2:9: invalid UTF-8"), "{e}");
    let missing = Grid::from_file(&dir.path().join("missing.toml"))
        .unwrap_err()
        .to_string();
    assert!(missing.starts_with("cannot read grid file"), "{missing}");
}

proptest! {
    /// The number of trials is the product of the axis sizes, ids are unique, and expansion is
    /// deterministic.
    #[test]
    fn grid_size_is_the_product_of_axes(
        layers in proptest::collection::btree_set(0i64..6, 1..4),
        widths in proptest::collection::btree_set(1i64..2000, 1..4),
        seeds in proptest::collection::btree_set(0i64..1000, 1..4),
        acts in proptest::sample::subsequence(vec!["relu", "tanh", "sigmoid"], 1..=3),
    ) {
        let list = |v: &std::collections::BTreeSet<i64>| {
            v.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        };
        let acts_list = acts.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", ");
        let text = format!(
            "{HEAD}[experiment.grid]\nhidden_layers = [{}]\nhidden_width = [{}]\nseed = [{}]\nactivation = [{acts_list}]\n",
            list(&layers), list(&widths), list(&seeds)
        );
        let g = parse(&text).unwrap();
        prop_assert_eq!(g.len(), layers.len() * widths.len() * seeds.len() * acts.len());
        let ids: std::collections::HashSet<_> = g.trials().map(|t| t.id).collect();
        prop_assert_eq!(ids.len(), g.len());
        let again = parse(&text).unwrap();
        prop_assert_eq!(g, again);
    }

    /// Arbitrary text never panics the parser.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        let _ = parse(&text);
    }

    /// Arbitrary edits of a valid file never panic the parser.
    #[test]
    fn mutated_lab1_never_panics(pos in 0usize..2000, insert in "[\\[\\]=\"a-z0-9.,\\n -]{0,12}") {
        let mut text = LAB1.to_owned();
        let mut p = pos.min(text.len());
        while !text.is_char_boundary(p) { p -= 1; }
        text.insert_str(p, &insert);
        let _ = parse(&text);
    }
}

#[test]
fn file_larger_than_the_limit_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.toml");
    let mut text = String::from(HEAD);
    text.push_str(&"# padding\n".repeat(usize::try_from(MAX_GRID_FILE_BYTES).unwrap() / 10 + 1));
    std::fs::write(&path, &text).unwrap();
    let e = Grid::from_file(&path).unwrap_err();
    assert!(matches!(e, GridError::TooLarge { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "grid file {} is larger than 4194304 bytes; a grid file lists axes, not data",
            path.display()
        )
    );
    assert!(matches!(
        Grid::parse(&text, "t.toml"),
        Err(GridError::TooLarge { .. })
    ));
    // Just under the limit is read (and here, valid).
    text.truncate(usize::try_from(MAX_GRID_FILE_BYTES).unwrap() - 1);
    let end = text.rfind('\n').unwrap() + 1;
    text.truncate(end);
    std::fs::write(&path, &text).unwrap();
    assert_eq!(Grid::from_file(&path).unwrap().len(), 1);
}

#[test]
fn a_huge_product_is_refused_before_expansion() {
    // 1000^4 = 10^12 trials: refused from the axis sizes, without allocating a trial.
    let axis = |name: &str, from: u32| {
        let values: Vec<String> = (from..from + 1000).map(|i| i.to_string()).collect();
        format!("{name} = [{}]\n", values.join(", "))
    };
    let text = format!(
        "{HEAD}[experiment.grid]\n{}{}{}{}",
        axis("hidden_width", 1),
        axis("batch_size", 1),
        axis("epochs", 1),
        axis("seed", 0)
    );
    let started = std::time::Instant::now();
    let e = err(&text);
    assert!(
        e.contains("expands to 1000000000000 trials (1000 x 1000 x 1000 x 1000 values"),
        "{e}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // 65536 x 100000^3 does not fit in a u64: still a clear message, and still fast.
    let axis = |name: &str, n: u32| {
        let values: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
        format!("{name} = [{}]\n", values.join(","))
    };
    let text = format!(
        "{HEAD}[experiment.grid]\n{}{}{}{}",
        axis("hidden_width", 65_536),
        axis("batch_size", 100_000),
        axis("epochs", 100_000),
        axis("seed", 100_000)
    );
    let e = err(&text);
    assert!(
        e.contains("expands to more than 18446744073709551615 trials (65536 x 100000 x 100000 x 100000 values"),
        "{e}"
    );
}

#[test]
fn a_long_axis_expands_in_linear_time() {
    // Duplicate values used to be found by a scan per value: 100 000 seeds took seconds, a
    // million minutes.
    let n = 100_000;
    let seeds: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let text = format!(
        "{}[experiment.grid]\nseed = [{}]\n",
        HEAD.replace("[sweep]\n", &format!("[sweep]\nmax_trials = {n}\n")),
        seeds.join(",")
    );
    let started = std::time::Instant::now();
    assert_eq!(parse(&text).unwrap().len(), n);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let g = parse(&format!("\u{feff}{HEAD}"));
    assert!(g.is_ok(), "{g:?}");
}

#[test]
fn tables_cannot_be_written_as_arrays() {
    // serde reads a struct from an array of its fields; a grid file must write a table.
    let e = err(&format!(
        "{HEAD}table = [\"activation\", \"hidden_layers\"]\n[experiment.grid]\nactivation = [\"relu\", \"tanh\"]\nhidden_layers = [1, 2]\n"
    ));
    assert!(e.contains("experiment[0].table: must be a table"), "{e}");
    let e = err("[[sweep]]\nname = \"s\"\n[[experiment]]\nname = \"e\"\ndataset = \"cifar10\"\n");
    assert!(e.contains("sweep: must be a table"), "{e}");
}

#[test]
fn messages_escape_control_characters() {
    let e = err(&format!("{HEAD}\"a\\u001bb\" = 1\n"));
    assert!(!e.chars().any(char::is_control), "{e:?}");
    assert!(e.contains("a\\u{1b}b"), "{e}");
}

/// Every example grid the README tells people to run loads (a key that becomes built-in, for
/// one, must not break an example that used it as a program's own key).
#[test]
fn every_example_grid_loads() {
    fn grids(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                grids(&path, found);
            } else if path.extension().is_some_and(|e| e == "toml") {
                found.push(path);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = vec![root.join("lab1.toml")];
    grids(&root.join("examples"), &mut found);
    assert!(found.len() >= 3, "{found:?}");
    for path in found {
        let text = std::fs::read_to_string(&path).unwrap();
        // A grid on a user's .npz needs its reader: sweep-data's `example_grids` test loads it.
        if text.contains(".npz\"") {
            continue;
        }
        if let Err(e) = Grid::parse(&text, &path.display().to_string()) {
            panic!("{e}");
        }
    }
}

/// The training options' keys: fixed and as axes, their values in the trials, named in the
/// canonical text only when not the default (so lab 1's ids do not change), and their errors.
#[test]
fn training_options_are_hyperparameters() {
    let g = parse(&format!(
        "{HEAD}[experiment.fixed]\nlr_schedule_unit = \"batch\"\nlr_warmup = 5\n\
         label_smoothing = 0.1\nclip_grad_norm = 1.0\n\
         [experiment.grid]\nlr_schedule = [\"constant\", \"step\", \"cosine\", \"onecycle\"]\n\
         lr_gamma = [0.5, 1.0]\n"
    ))
    .unwrap();
    assert_eq!(g.len(), 8);
    let t = g.trials().nth(7).unwrap();
    assert_eq!(t.params.lr_schedule, LrSchedule::Onecycle);
    assert_eq!(t.params.lr_schedule_unit, LrScheduleUnit::Batch);
    assert_eq!(t.params.lr_warmup, 5);
    assert_eq!(t.params.lr_step_size, 10);
    assert_eq!(t.params.lr_gamma, 1.0);
    assert_eq!(t.params.label_smoothing, 0.1);
    assert_eq!(t.params.clip_grad_norm, 1.0);
    let defaults = parse(&format!("{HEAD}[experiment.fixed]\nepochs = 2\n")).unwrap();
    let d = defaults.trials().next().unwrap();
    assert_eq!(d.params.lr_schedule, LrSchedule::Constant);
    assert_eq!(d.params.clip_grad_norm, 0.0);
    assert!(d.params.named().all(|(p, _)| !p.key().starts_with("lr_")));
    assert!(t.params.named().any(|(p, _)| p == Param::LrSchedule));

    let e = err(&format!(
        "{HEAD}[experiment.fixed]\nlr_schedule = \"cosin\"\n"
    ));
    assert!(e.contains("did you mean"), "{e}");
    let e = err(&format!(
        "{HEAD}[experiment.fixed]\nlabel_smoothing = 1.0\n"
    ));
    assert!(e.contains("less than 1"), "{e}");
    let e = err(&format!("{HEAD}[experiment.fixed]\nwarmup = 3\n"));
    assert!(e.contains("`lr_warmup`"), "{e}");
}
