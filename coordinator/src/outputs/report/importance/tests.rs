use super::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// A full grid of `a` x `b` levels, `repeats` trials per cell, metric `f(i, j, r)`.
fn grid(
    a: usize,
    b: usize,
    repeats: usize,
    f: impl Fn(usize, usize, usize) -> f64,
) -> (Vec<Column>, Vec<f64>) {
    let (mut x, mut c, mut y) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..a {
        for j in 0..b {
            for r in 0..repeats {
                x.push(i as f64 * 0.1);
                c.push(format!("level{j}"));
                y.push(f(i, j, r));
            }
        }
    }
    (vec![Column::Numeric(x), Column::Categorical(c)], y)
}

#[test]
fn an_additive_full_grid_is_split_exactly_with_nothing_left() {
    // y = 3 i + j: var of 3i over i in 0..3 is 6, of j over 0..4 is 1.25.
    let (columns, y) = grid(3, 4, 1, |i, j, _| 3.0 * i as f64 + j as f64);
    let imp = importance(&columns, &y).unwrap();
    assert_eq!(imp.method, Method::Exact);
    assert!(close(imp.shares[0], 6.0 / 7.25), "{imp:?}");
    assert!(close(imp.shares[1], 1.25 / 7.25), "{imp:?}");
    assert!(close(imp.rest.unwrap(), 0.0), "{imp:?}");
    assert_eq!(imp.trials, 12);
}

#[test]
fn an_interaction_is_left_in_the_rest() {
    // y = a * b on a 2 x 2 grid: 0, 0, 0, 1. Total SS 0.75; each main effect 0.25.
    let (columns, y) = grid(2, 2, 1, |i, j, _| (i * j) as f64);
    let imp = importance(&columns, &y).unwrap();
    assert_eq!(imp.method, Method::Exact);
    assert!(
        close(imp.shares[0], 1.0 / 3.0) && close(imp.shares[1], 1.0 / 3.0),
        "{imp:?}"
    );
    assert!(close(imp.rest.unwrap(), 1.0 / 3.0), "{imp:?}");
}

#[test]
fn repeats_of_a_full_grid_stay_exact_and_their_noise_goes_to_the_rest() {
    // Cell means 10 i; the two repeats of a cell differ by 2 (noise variance 1 per trial).
    let (columns, y) = grid(2, 3, 2, |i, _, r| {
        10.0 * i as f64 + if r == 0 { -1.0 } else { 1.0 }
    });
    let imp = importance(&columns, &y).unwrap();
    assert_eq!(imp.method, Method::Exact);
    // Total SS: 12 * 25 (the effect of i) + 12 * 1 (noise) = 312.
    assert!(close(imp.shares[0], 300.0 / 312.0), "{imp:?}");
    assert!(close(imp.shares[1], 0.0), "{imp:?}");
    assert!(close(imp.rest.unwrap(), 12.0 / 312.0), "{imp:?}");
}

#[test]
fn a_grid_with_a_missing_result_is_estimated() {
    let (columns, mut y) = grid(3, 3, 1, |i, j, _| i as f64 + 0.1 * j as f64);
    y[4] = f64::NAN; // a failed trial
    let imp = importance(&columns, &y).unwrap();
    assert_eq!(imp.method, Method::Estimated);
    assert_eq!(imp.rest, None);
    assert_eq!(imp.trials, 8);
    assert!(imp.shares[0] > 0.9 && imp.shares[1] < 0.1, "{imp:?}");
}

/// A fixed pseudo-random sequence in [0, 1).
fn uniform(n: usize, mut seed: u64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

#[test]
fn a_sampled_space_is_estimated_from_bins_and_an_irrelevant_parameter_gets_about_nothing() {
    let x = uniform(2000, 1);
    let noise = uniform(2000, 2);
    let y: Vec<f64> = x.iter().zip(&noise).map(|(x, e)| 10.0 * x + e).collect();
    let columns = vec![Column::Numeric(x), Column::Numeric(uniform(2000, 3))];
    let imp = importance(&columns, &y).unwrap();
    assert_eq!(imp.method, Method::Estimated);
    // Ten bins of a linear effect keep 99 % of its variance; noise is 1/100 of it.
    assert!(imp.shares[0] > 0.95 && imp.shares[0] <= 1.0, "{imp:?}");
    assert!(imp.shares[1] < 0.01, "{imp:?}");
}

#[test]
fn bins_have_equal_counts_and_never_split_equal_values() {
    let values: Vec<f64> = (0..100).map(|i| f64::from(i / 4)).collect();
    let (codes, k) = bins(&values, 10);
    assert_eq!(k, 10);
    for (i, v) in values.iter().enumerate() {
        for (j, w) in values.iter().enumerate() {
            if v == w {
                assert_eq!(codes[i], codes[j]);
            }
        }
    }
    let ones = codes.iter().filter(|&&c| c == codes[0]).count();
    assert!((8..=12).contains(&ones), "{ones}");
}

#[test]
fn what_cannot_be_computed_says_why() {
    let columns = vec![Column::Numeric(vec![1.0, 2.0])];
    assert_eq!(
        importance(&columns, &[1.0, 2.0, 3.0]),
        Err(Unavailable::Length {
            expected: 3,
            found: 2
        })
    );
    assert_eq!(
        importance(&columns, &[1.0, f64::NAN]),
        Err(Unavailable::TooFew)
    );
    assert_eq!(
        importance(&columns, &[5.0, 5.0]),
        Err(Unavailable::Constant)
    );
}

#[test]
fn no_hyperparameter_gives_no_share() {
    let imp = importance(&[], &[1.0, 2.0, 4.0]).unwrap();
    assert!(imp.shares.is_empty());
}

/// Every combination present but one twice as often: not a balanced grid, so estimated.
#[test]
fn a_grid_with_one_cell_repeated_is_estimated() {
    let (mut columns, mut y) = grid(2, 3, 1, |i, j, _| i as f64 + j as f64);
    if let [Column::Numeric(x), Column::Categorical(c)] = &mut columns[..] {
        x.push(0.1);
        c.push("level2".into());
    }
    y.push(3.0);
    let imp = importance(&columns, &y).unwrap();
    assert_eq!(imp.method, Method::Estimated, "{imp:?}");
}

/// Three columns (2 x 3 x 2), each combination once, in an order other than the columns':
/// exact, the combinations told apart whatever their order.
#[test]
fn a_full_grid_of_three_columns_in_any_order_is_exact() {
    let (mut a, mut b, mut c, mut y) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for k in 0..2 {
        for j in (0..3).rev() {
            for i in 0..2 {
                a.push(i as f64);
                b.push(format!("b{j}"));
                c.push(k as f64 * 10.0);
                y.push(4.0 * i as f64 + j as f64 + 0.5 * k as f64);
            }
        }
    }
    let columns = vec![
        Column::Numeric(a),
        Column::Categorical(b),
        Column::Numeric(c),
    ];
    let imp = importance(&columns, &y).unwrap();
    assert_eq!(imp.method, Method::Exact, "{imp:?}");
    assert!(close(imp.rest.unwrap(), 0.0), "{imp:?}");
    // Variances of the additive parts: 4, 2/3 and 1/16.
    let total = 4.0 + 2.0 / 3.0 + 1.0 / 16.0;
    assert!(close(imp.shares[0], 4.0 / total), "{imp:?}");
    assert!(close(imp.shares[1], (2.0 / 3.0) / total), "{imp:?}");
    assert!(close(imp.shares[2], (1.0 / 16.0) / total), "{imp:?}");
}
