//! Tests of the samplers: determinism, domains, no repeated configuration, and TPE finding
//! a better region than random search.

use super::*;
use crate::grid::Field;
use crate::search::{Metric, Mode};

fn spec(method: Method, trials: u32, space: Vec<(Param, Distribution)>) -> SampleSpec {
    SampleSpec {
        trials,
        method,
        seed: 7,
        space,
    }
}

fn wide() -> Vec<(Param, Distribution)> {
    vec![
        (
            Param::HiddenWidth,
            Distribution::LogUniform {
                low: 16.0,
                high: 1024.0,
            },
        ),
        (
            Param::LearningRate,
            Distribution::LogUniform {
                low: 1e-5,
                high: 1.0,
            },
        ),
        (
            Param::TrainFraction,
            Distribution::Uniform {
                low: 0.25,
                high: 1.0,
            },
        ),
    ]
}

#[test]
fn values_map_onto_their_distributions() {
    let lr = Distribution::LogUniform {
        low: 1e-4,
        high: 1e-2,
    };
    assert_eq!(value_at(Param::LearningRate, &lr, 0.0), Value::Float(1e-4));
    assert_eq!(value_at(Param::LearningRate, &lr, 0.5), Value::Float(1e-3));
    assert_eq!(
        value_at(Param::LearningRate, &lr, 0.25),
        Value::Float(3.162e-4)
    );
    assert_eq!(value_at(Param::LearningRate, &lr, 1.0), Value::Float(1e-2));
    let width = Distribution::LogUniform {
        low: 16.0,
        high: 1024.0,
    };
    assert_eq!(value_at(Param::HiddenWidth, &width, 0.5), Value::Int(128));
    let layers = Distribution::Int { low: 1, high: 3 };
    let drawn: Vec<Value> = [0.0, 0.34, 0.67, 0.999]
        .iter()
        .map(|u| value_at(Param::HiddenLayers, &layers, *u))
        .collect();
    assert_eq!(
        drawn,
        [Value::Int(1), Value::Int(2), Value::Int(3), Value::Int(3)]
    );
    // The inverse, for fitting TPE.
    for u in [0.1, 0.5, 0.9] {
        let v = value_at(Param::LearningRate, &lr, u);
        assert!((coordinate_of(&lr, v).unwrap() - u).abs() < 1e-3);
    }
    assert_eq!(coordinate_of(&layers, Value::Int(2)), Some(0.5));
    let choice = Distribution::Choice(vec![Value::Int(1), Value::Int(4)]);
    assert_eq!(coordinate_of(&choice, Value::Int(3)), None);
}

#[test]
fn every_method_is_deterministic_in_domain_and_never_repeats() {
    for method in Method::ALL {
        let s = spec(method, 64, wide());
        let points = Sampler::new(&s).draw(64).unwrap();
        assert_eq!(points, Sampler::new(&s).draw(64).unwrap(), "{method:?}");
        let keys: BTreeSet<PointKey> = points.iter().map(|p| key(p)).collect();
        assert_eq!(keys.len(), 64);
        for p in &points {
            for ((param, _), v) in s.space.iter().zip(p) {
                assert!(param.def().domain.contains(*v), "{param}: {v:?}");
            }
        }
        let other = SampleSpec {
            seed: 8,
            ..s.clone()
        };
        assert_ne!(points, Sampler::new(&other).draw(64).unwrap());
    }
}

#[test]
fn a_small_space_is_used_up_exactly() {
    let space = vec![
        (
            Param::Activation,
            Distribution::Choice(crate::grid::Activation::ALL.map(|a| a.to_value()).to_vec()),
        ),
        (Param::HiddenLayers, Distribution::Int { low: 0, high: 3 }),
    ];
    assert_eq!(space_size(&space), Some(12));
    for method in Method::ALL {
        let s = spec(method, 12, space.clone());
        let points = Sampler::new(&s).draw(12).unwrap();
        let keys: BTreeSet<PointKey> = points.iter().map(|p| key(p)).collect();
        assert_eq!(keys.len(), 12, "{method:?}");
        let all: BTreeSet<PointKey> = keys;
        let err = Sampler::new(&s)
            .propose(12, &[], Objective::default(), &all)
            .unwrap_err();
        assert_eq!(err.index, 12);
    }
}

/// A smooth objective with its peak at a learning rate of 0.003 and a width of 256.
fn accuracy(point: &[Value]) -> f64 {
    let (Value::Int(width), Value::Float(lr)) = (point[0], point[1]) else {
        panic!("{point:?}")
    };
    let a = (lr.log10() - 0.003f64.log10()).powi(2);
    let b = ((width as f64).log2() - 8.0).powi(2) / 4.0;
    1.0 - 0.1 * (a + b)
}

/// The best accuracy among `n` proposals, each fitted on the results before it.
fn search(method: Method, seed: u64, n: u64) -> f64 {
    let s = SampleSpec {
        seed,
        ..spec(method, n as u32, wide())
    };
    let sampler = Sampler::new(&s);
    let mut history = Vec::new();
    let mut taken = BTreeSet::new();
    for i in 0..n {
        let p = sampler
            .propose(i, &history, Objective::default(), &taken)
            .unwrap();
        taken.insert(key(&p));
        history.push(Observation {
            value: accuracy(&p),
            point: p,
        });
    }
    history.iter().map(|o| o.value).fold(f64::MIN, f64::max)
}

#[test]
fn tpe_beats_random_search_on_a_smooth_objective() {
    // Median over 9 seeds of the best of 40 trials.
    let median = |method| {
        let mut best: Vec<f64> = (0..9).map(|seed| search(method, seed, 40)).collect();
        best.sort_by(f64::total_cmp);
        best[4]
    };
    let (tpe, random) = (median(Method::Tpe), median(Method::Random));
    assert!(tpe > random, "tpe {tpe}, random {random}");
}

#[test]
fn tpe_replays_from_the_same_results() {
    let s = spec(Method::Tpe, 30, wide());
    let sampler = Sampler::new(&s);
    let history: Vec<Observation> = sampler
        .draw(20)
        .unwrap()
        .into_iter()
        .map(|p| Observation {
            value: accuracy(&p),
            point: p,
        })
        .collect();
    let taken: BTreeSet<PointKey> = history.iter().map(|o| key(&o.point)).collect();
    let loss = Objective {
        metric: Metric::TrainLoss,
        mode: Mode::Min,
    };
    let a = sampler
        .propose(20, &history, Objective::default(), &taken)
        .unwrap();
    assert_eq!(
        a,
        sampler
            .propose(20, &history, Objective::default(), &taken)
            .unwrap()
    );
    // Minimising the same numbers looks elsewhere.
    assert_ne!(a, sampler.propose(20, &history, loss, &taken).unwrap());
}
