//! `--metrics-from`: the metrics of a finished sweep's `results.json`, so that simulated
//! workers report, for each trial they lease, what a real run of the same configuration
//! recorded (its epochs, accuracies and confusion matrices) instead of made-up numbers. A
//! sampler driven through the live coordinator is then measured on a real objective without
//! training (BENCHMARKS.md, "TPE, 48 trials ... through the coordinator").
//!
//! A leased trial matches the recorded trial whose hyperparameters are the same apart from
//! `seed`: the one with the leased seed when the table has it, else the table's only seed of
//! that configuration. A configuration the table does not have, or one recorded with several
//! seeds none of which is the leased one, is an error that names the leased values.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};
use sweep_common::grid::{Identity, Param};
use sweep_common::results::Results;
use sweep_common::{ConfusionMatrix, EpochMetrics, HyperParams};

/// What makes two trials the same configuration here: every hyperparameter but `seed`.
type ConfigKey = Vec<(Param, Identity)>;

fn config_key(params: &HyperParams) -> ConfigKey {
    params
        .values()
        .filter(|(p, _)| *p != Param::Seed)
        .map(|(p, v)| (p, v.identity()))
        .collect()
}

/// One recorded trial's outcome: what a simulated worker reports for a trial that matches it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The recorded trial's name (for messages).
    pub name: String,
    /// Its seed.
    pub seed: u64,
    /// Every epoch, in order.
    pub epochs: Vec<EpochMetrics>,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
    pub train_confusion: ConfusionMatrix,
    pub test_confusion: ConfusionMatrix,
    /// Images of the dataset it was trained on (the split's sizes are computed from it).
    pub dataset_images: u64,
}

/// The succeeded trials of a `results.json`, by configuration.
#[derive(Debug, Default)]
pub struct Table {
    by_config: HashMap<ConfigKey, Vec<Recorded>>,
}

impl Table {
    /// Reads `path` (a `results.json`, gunzipped first when its name ends in `.gz`).
    pub fn read(path: &Path) -> anyhow::Result<Table> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut text = String::new();
        if path.extension().is_some_and(|e| e == "gz") {
            flate2::read::GzDecoder::new(bytes.as_slice())
                .read_to_string(&mut text)
                .with_context(|| format!("{}: not gzipped text", path.display()))?;
        } else {
            text = String::from_utf8(bytes)
                .with_context(|| format!("{}: not UTF-8 text", path.display()))?;
        }
        let results: Results<'static> = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a results.json", path.display()))?;
        Table::of(&results).with_context(|| format!("--metrics-from {}", path.display()))
    }

    /// The table of `results`' succeeded trials (the others have no outcome to replay).
    pub fn of(results: &Results<'_>) -> anyhow::Result<Table> {
        let mut table = Table::default();
        for t in results.trials.iter().filter(|t| t.succeeded()) {
            let missing = |field: &str| format!("trial {}: succeeded without {field}", t.name);
            let recorded = Recorded {
                name: t.name.to_string(),
                seed: t.params.seed,
                epochs: t.epochs.to_vec(),
                train_accuracy: t
                    .train_accuracy
                    .with_context(|| missing("train_accuracy"))?,
                test_accuracy: t.test_accuracy.with_context(|| missing("test_accuracy"))?,
                train_confusion: t
                    .train_confusion
                    .as_deref()
                    .cloned()
                    .with_context(|| missing("train_confusion"))?,
                test_confusion: t
                    .test_confusion
                    .as_deref()
                    .cloned()
                    .with_context(|| missing("test_confusion"))?,
                dataset_images: t
                    .dataset_images
                    .with_context(|| missing("dataset_images"))?,
            };
            let seeds = table.by_config.entry(config_key(&t.params)).or_default();
            if let Some(twin) = seeds.iter().find(|r| r.seed == recorded.seed) {
                bail!(
                    "trials {} and {} have the same hyperparameters and seed: which one a \
                     leased trial replays would be arbitrary",
                    twin.name,
                    t.name
                );
            }
            seeds.push(recorded);
        }
        if table.by_config.is_empty() {
            bail!("no succeeded trial to replay");
        }
        Ok(table)
    }

    /// Configurations recorded.
    pub fn len(&self) -> usize {
        self.by_config.len()
    }

    /// The recorded trial a leased trial of `params` replays.
    pub fn lookup(&self, params: &HyperParams) -> Result<&Recorded, String> {
        let shown = || {
            params
                .named()
                .map(|(p, v)| format!("{p} = {}", v.display()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Some(seeds) = self.by_config.get(&config_key(params)) else {
            return Err(format!(
                "no recorded trial has the leased trial's configuration ({}); the table has {} \
                 configurations: the grid must sample from the recorded sweep's values, with \
                 its fixed keys",
                shown(),
                self.len()
            ));
        };
        match seeds.as_slice() {
            [only] => Ok(only),
            many => many.iter().find(|r| r.seed == params.seed).ok_or_else(|| {
                let recorded: Vec<String> = many.iter().map(|r| r.seed.to_string()).collect();
                format!(
                    "the leased trial ({}) has seed {}, and the table has its configuration with \
                     seeds {} only",
                    shown(),
                    params.seed,
                    recorded.join(", ")
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A results.json of `trials`: (learning rate, seed, test accuracy) each.
    fn results(trials: &[(f64, u64, f64)]) -> Results<'static> {
        let trials: Vec<serde_json::Value> = trials
            .iter()
            .enumerate()
            .map(|(i, &(lr, seed, acc))| {
                serde_json::json!({
                    "id": format!("00000000-0000-0000-0000-{i:012}"),
                    "experiment": "e",
                    "name": format!("t{i}"),
                    "dataset": "fashion-mnist",
                    "params": serde_json::to_value(params(lr, seed)).expect("params as JSON"),
                    "split": {"train_ratio": 0.7, "seed": 0},
                    "status": "succeeded",
                    "attempts": 1,
                    "epochs": [{"epoch": 1, "train_loss": 1.0, "train_accuracy": 50.0,
                                "test_accuracy": acc, "seconds": 1.0}],
                    "train_accuracy": 50.0,
                    "test_accuracy": acc,
                    "train_confusion": {"classes": 2, "counts": [1, 0, 0, 1]},
                    "test_confusion": {"classes": 2, "counts": [1, 0, 0, 1]},
                    "dataset_images": 60000,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "format": 1, "sweep": "s", "grid_file": "g.toml", "finished": true,
            "experiments": [], "trials": trials,
        });
        serde_json::from_value(doc).expect("a results.json")
    }

    fn params(lr: f64, seed: u64) -> HyperParams {
        let mut p = HyperParams::defaults(0).expect("defaults");
        p.learning_rate = lr;
        p.seed = seed;
        p.epochs = 1;
        p
    }

    #[test]
    fn a_configuration_with_one_recorded_seed_matches_whatever_the_leased_seed() {
        let table = Table::of(&results(&[(0.1, 0, 80.0), (0.01, 0, 70.0)])).expect("a table");
        assert_eq!(table.len(), 2);
        for seed in [0, 7] {
            let r = table.lookup(&params(0.01, seed)).expect("recorded");
            assert_eq!((r.name.as_str(), r.test_accuracy), ("t1", 70.0));
            assert_eq!(r.epochs[0].test_accuracy, 70.0);
        }
    }

    #[test]
    fn several_recorded_seeds_match_by_seed_and_a_missing_one_is_an_error() {
        let table = Table::of(&results(&[(0.1, 1, 80.0), (0.1, 2, 81.0)])).expect("a table");
        assert_eq!(table.len(), 1);
        assert_eq!(
            table.lookup(&params(0.1, 2)).map(|r| r.test_accuracy),
            Ok(81.0)
        );
        let e = table
            .lookup(&params(0.1, 3))
            .expect_err("seed 3 is not recorded");
        assert!(e.contains("seed 3") && e.contains("seeds 1, 2"), "{e}");
    }

    #[test]
    fn a_configuration_not_recorded_is_an_error_naming_its_values() {
        let table = Table::of(&results(&[(0.1, 0, 80.0)])).expect("a table");
        let e = table.lookup(&params(0.03, 0)).expect_err("not recorded");
        assert!(e.contains("learning_rate = 0.03"), "{e}");
        assert!(e.contains("1 configurations"), "{e}");
        // Another fixed key is another configuration too.
        let mut other = params(0.1, 0);
        other.hidden_width = 7;
        assert!(table.lookup(&other).is_err());
    }

    #[test]
    fn two_recorded_trials_of_one_configuration_and_seed_are_refused() {
        let e = Table::of(&results(&[(0.1, 0, 80.0), (0.1, 0, 81.0)])).expect_err("ambiguous");
        assert!(format!("{e:#}").contains("t0 and t1"), "{e:#}");
    }
}
