//! Issue 17's TPE benchmark (BENCHMARKS.md, "Early stopping and sampled search"): our samplers
//! (`common::search`) on a space whose every configuration was trained for real and recorded
//! (bench/anchors/fashion-space.toml's results.json). A trial is a lookup of the recorded final
//! test accuracy, so the samplers are compared on a real objective without training.
//!
//! For each sampler seed: `random` draws `--random` configurations (no repeats, as an
//! experiment does), `tpe` proposes `--tpe` one after another, each fitted on the results of
//! those before (what the coordinator does with one worker). Prints one JSON object per seed:
//! the best of TPE's trials, the best of the first `--tpe` and of all random ones, and the
//! random trials' `--percentile` percentile.
//!
//!   search-bench --results target/bench/fashion-space.results.json [--seeds 10]

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, bail};
use sweep_common::grid::{Param, Value};
use sweep_common::results::Results;
use sweep_common::search::sample::{self, Observation, PointKey, Sampler};
use sweep_common::search::{Distribution, Method, Objective, SampleSpec};

/// The hyperparameters the space varies, in the order TPE sees them: axis order, the order a
/// grid file's `[experiment.sample.space]` gives them, so that with one worker the coordinator
/// proposes what this replay does (`bench/search/live.py` runs it through the coordinator).
const KEYS: [Param; 4] = [
    Param::Activation,
    Param::HiddenLayers,
    Param::HiddenWidth,
    Param::LearningRate,
];

struct Args {
    results: PathBuf,
    seeds: u64,
    tpe: u32,
    random: u32,
    percentile: f64,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        results: PathBuf::new(),
        seeds: 10,
        tpe: 48,
        random: 200,
        percentile: 95.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--results" => a.results = value.into(),
            "--seeds" => a.seeds = value.parse()?,
            "--tpe" => a.tpe = value.parse()?,
            "--random" => a.random = value.parse()?,
            "--percentile" => a.percentile = value.parse()?,
            _ => bail!(
                "unknown flag {flag}; allowed: --results FILE, --seeds N, --tpe N, --random N, \
                 --percentile P"
            ),
        }
    }
    if a.results.as_os_str().is_empty() {
        bail!("--results FILE (a results.json, or .json.gz) is required");
    }
    Ok(a)
}

/// The results file, gunzipped when its name ends in `.gz`.
fn read(path: &PathBuf) -> anyhow::Result<Results<'static>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut text = String::new();
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::GzDecoder::new(bytes.as_slice()).read_to_string(&mut text)?;
    } else {
        text = String::from_utf8(bytes)?;
    }
    serde_json::from_str(&text).with_context(|| format!("{}: not a results.json", path.display()))
}

/// The sampled keys and their distributions.
type Space = Vec<(Param, Distribution)>;

/// The recorded space: each key's values (as choices, in the order first seen) and the final
/// test accuracy of every configuration.
fn table(results: &Results<'_>) -> anyhow::Result<(Space, BTreeMap<PointKey, f64>)> {
    let mut values: Vec<Vec<Value>> = vec![Vec::new(); KEYS.len()];
    let mut lookup = BTreeMap::new();
    for t in results.trials.iter().filter(|t| t.succeeded()) {
        let point: Vec<Value> = KEYS.iter().map(|&p| t.params.get(p)).collect();
        for (column, v) in values.iter_mut().zip(&point) {
            if !column.iter().any(|c| c.identity() == v.identity()) {
                column.push(*v);
            }
        }
        let accuracy = t
            .test_accuracy
            .with_context(|| format!("trial {} has no test accuracy", t.name))?;
        lookup.insert(sample::key(&point), accuracy);
    }
    let space: Space = KEYS
        .iter()
        .zip(values)
        .map(|(&p, v)| (p, Distribution::Choice(v)))
        .collect();
    let size: usize = space
        .iter()
        .map(|(_, d)| match d {
            Distribution::Choice(v) => v.len(),
            _ => 1,
        })
        .product();
    if lookup.len() != size {
        bail!(
            "{} configurations recorded, the space of their values has {size}: the table must \
             be the whole grid",
            lookup.len()
        );
    }
    Ok((space, lookup))
}

fn main() -> anyhow::Result<()> {
    let a = args()?;
    let results = read(&a.results)?;
    let (space, lookup) = table(&results)?;
    let value = |point: &[Value]| -> anyhow::Result<f64> {
        lookup
            .get(&sample::key(point))
            .copied()
            .context("a proposal outside the recorded space")
    };
    for seed in 0..a.seeds {
        let spec = |method, trials| SampleSpec {
            trials,
            method,
            seed,
            space: space.clone(),
        };
        // Random: `--random` distinct configurations.
        let random_spec = spec(Method::Random, a.random);
        let drawn = Sampler::new(&random_spec).draw(a.random)?;
        let mut random: Vec<f64> = drawn.iter().map(|p| value(p)).collect::<Result<_, _>>()?;
        let random_first = random
            .iter()
            .take(a.tpe as usize)
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        random.sort_by(f64::total_cmp);
        let best_random = random.last().copied().unwrap_or(f64::NAN);
        // The value at the percentile, by nearest rank.
        let rank = ((a.percentile / 100.0) * random.len() as f64).ceil() as usize;
        let percentile = random[rank.clamp(1, random.len()) - 1];
        // TPE: one proposal after another, each fitted on the results before it.
        let tpe_spec = spec(Method::Tpe, a.tpe);
        let sampler = Sampler::new(&tpe_spec);
        let mut history: Vec<Observation> = Vec::new();
        let mut taken = BTreeSet::new();
        for index in 0..u64::from(a.tpe) {
            let point = sampler.propose(index, &history, Objective::default(), &taken)?;
            taken.insert(sample::key(&point));
            history.push(Observation {
                value: value(&point)?,
                point,
            });
        }
        let best_tpe = history
            .iter()
            .map(|o| o.value)
            .fold(f64::NEG_INFINITY, f64::max);
        println!(
            "{}",
            serde_json::json!({
                "seed": seed,
                "space": lookup.len(),
                "tpe_trials": a.tpe,
                "tpe_best": best_tpe,
                "random_trials": a.random,
                "random_best": best_random,
                "random_best_first": random_first,
                "random_percentile": a.percentile,
                "random_at_percentile": percentile,
            })
        );
    }
    Ok(())
}
