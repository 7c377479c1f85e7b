//! `repeats = N`, in `[sweep]` or an `[[experiment]]`: shorthand for a seed axis of `N` seeds,
//! the sweep's seed and the `N - 1` after it (`seed = [s, s+1, ..., s+N-1]`).
//!
//! The rule: an experiment's own `repeats` wins over `[sweep] repeats`; `[sweep] repeats` is a
//! default, like `[sweep] seed`, so an experiment that gives `seed` itself (fixed or as an
//! axis) keeps its seeds; an experiment that gives both `seed` and its own `repeats` is
//! refused. `repeats = 1` is no axis at all, so trial ids are those of the same grid without
//! it. A `trial_name` template without `{seed}` gets `_seed-{seed}` appended when there is more
//! than one seed, so the repeats of a configuration have different names.

use toml::Spanned;

use super::check::Checker;
use super::params::Param;
use super::parse::RawExperiment;
use super::rules::MAX_REPEATS;
use super::{GridError, Value};

/// The suffix given to a trial name template that does not name `{seed}`.
const SEED_SUFFIX: &str = "_seed-{seed}";

/// `[sweep] repeats`, checked: how many seeds each experiment runs unless it says otherwise.
pub(super) fn sweep(c: &Checker<'_>, repeats: Option<&Spanned<i64>>) -> Result<u64, GridError> {
    match repeats {
        Some(r) => c.int(r, "sweep.repeats", 1, MAX_REPEATS),
        None => Ok(1),
    }
}

/// Whether the experiment gives `seed` itself, in `[experiment.fixed]` or `[experiment.grid]`.
fn gives_seed(e: &RawExperiment) -> bool {
    e.fixed.0.0.contains_key(&Param::Seed)
        || e.axes().is_some_and(|g| g.0.contains_key(&Param::Seed))
}

/// How many seeds experiment `i` runs by `repeats` (1: no seed axis from `repeats`), by the
/// rule in the module's doc.
pub(super) fn of_experiment(
    c: &Checker<'_>,
    i: usize,
    e: &RawExperiment,
    sweep_repeats: u64,
) -> Result<u64, GridError> {
    let Some(r) = &e.repeats else {
        return Ok(if gives_seed(e) { 1 } else { sweep_repeats });
    };
    let key = format!("experiment[{i}].repeats");
    let n = c.int(r, &key, 1, MAX_REPEATS)?;
    if gives_seed(e) {
        return Err(c.err(
            &r.span(),
            &key,
            "repeats is shorthand for a seed axis, and this experiment gives seed itself; \
             keep one of them (repeats = N runs seeds sweep.seed to sweep.seed + N - 1)",
        ));
    }
    Ok(n)
}

/// Like [`of_experiment`], for counting trials before expansion: errors are left to it.
pub(super) fn count(e: &RawExperiment, sweep_repeats: u64) -> u64 {
    match &e.repeats {
        _ if gives_seed(e) => 1,
        Some(r) => r.get_ref().unsigned_abs().max(1),
        None => sweep_repeats,
    }
}

/// The seeds of `repeats` seeds from `sweep_seed` on; `None` for a single one (no axis).
pub(super) fn seeds(
    c: &Checker<'_>,
    span: &std::ops::Range<usize>,
    key: &str,
    sweep_seed: u64,
    repeats: u64,
) -> Result<Option<Vec<Value>>, GridError> {
    if repeats <= 1 {
        return Ok(None);
    }
    let last = sweep_seed
        .checked_add(repeats - 1)
        .filter(|&l| i64::try_from(l).is_ok())
        .ok_or_else(|| {
            c.err(
                span,
                key,
                format!(
                    "{repeats} repeats from sweep.seed = {sweep_seed} go past the largest seed, \
                     {}; lower sweep.seed",
                    i64::MAX
                ),
            )
        })?;
    Ok(Some((sweep_seed..=last).map(Value::Int).collect()))
}

/// `template` with `{seed}` in it: as given when it names it, else with [`SEED_SUFFIX`].
pub(super) fn template(template: String) -> String {
    if template.contains("{seed}") {
        template
    } else {
        template + SEED_SUFFIX
    }
}

#[cfg(test)]
mod tests {
    use crate::grid::Grid;

    const BASE: &str =
        "[experiment.fixed]\nepochs = 2\n[experiment.grid]\nactivation = [\"relu\", \"tanh\"]\n";

    fn grid(sweep_extra: &str, experiment_extra: &str, body: &str) -> Result<Grid, String> {
        let text = format!(
            "[sweep]\nname = \"r\"\nseed = 5\n{sweep_extra}\n[[experiment]]\nname = \"e\"\n\
             dataset = \"fashion-mnist\"\n{experiment_extra}\n{body}"
        );
        Grid::parse(&text, "r.toml").map_err(|e| e.to_string())
    }

    fn seeds(g: &Grid) -> Vec<u64> {
        g.trials().map(|t| t.params.seed).collect()
    }

    #[test]
    fn repeats_is_a_seed_axis_from_the_sweep_seed() {
        let g = grid("repeats = 3", "", BASE).unwrap();
        assert_eq!(seeds(&g), [5, 6, 7, 5, 6, 7]);
        let explicit = grid("", "", &format!("{BASE}seed = [5, 6, 7]\n")).unwrap();
        let ids = |g: &Grid| g.trials().map(|t| t.id).collect::<Vec<_>>();
        assert_eq!(
            ids(&g),
            ids(&explicit),
            "the same trials as the explicit axis"
        );
        let names: Vec<&str> = g.trials().map(|t| t.name.as_str()).collect();
        assert_eq!(names[0], "e_activation-ReLU_seed-5");
        assert_eq!(
            g.experiments[0].axes.last().map(|a| a.param),
            Some(crate::grid::Param::Seed)
        );
    }

    #[test]
    fn one_repeat_changes_no_id() {
        let plain = grid("", "", BASE).unwrap();
        for (s, e) in [("repeats = 1", ""), ("", "repeats = 1")] {
            let g = grid(s, e, BASE).unwrap();
            assert_eq!(g, plain);
        }
    }

    #[test]
    fn an_experiment_repeats_wins_and_a_template_gets_the_seed() {
        let g = grid(
            "repeats = 3",
            "repeats = 2\ntrial_name = \"run_{activation}\"",
            BASE,
        )
        .unwrap();
        let names: Vec<&str> = g.trials().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "run_ReLU_seed-5",
                "run_ReLU_seed-6",
                "run_Tanh_seed-5",
                "run_Tanh_seed-6"
            ]
        );
    }

    #[test]
    fn an_explicit_seed_keeps_its_seeds_against_the_sweep_default() {
        let g = grid("repeats = 4", "", &format!("{BASE}seed = [1, 2]\n")).unwrap();
        assert_eq!(seeds(&g), [1, 2, 1, 2]);
        let fixed = "[experiment.fixed]\nepochs = 2\nseed = 9\n";
        assert_eq!(seeds(&grid("repeats = 4", "", fixed).unwrap()), [9]);
    }

    #[test]
    fn repeats_with_an_explicit_seed_in_the_experiment_is_refused() {
        let e = grid("", "repeats = 2", &format!("{BASE}seed = [1, 2]\n")).unwrap_err();
        assert!(e.contains("r.toml:8:11: experiment[0].repeats"), "{e}");
        assert!(e.contains("this experiment gives seed itself"), "{e}");
        let fixed = "[experiment.fixed]\nseed = 9\n";
        assert!(
            grid("", "repeats = 2", fixed)
                .unwrap_err()
                .contains("gives seed itself")
        );
    }

    #[test]
    fn bad_repeats_are_refused_where_they_are() {
        let e = grid("repeats = 0", "", BASE).unwrap_err();
        assert!(
            e.contains("sweep.repeats: must be an integer from 1 to 1000, got 0"),
            "{e}"
        );
        let e = grid("", "repeats = 1001", BASE).unwrap_err();
        assert!(
            e.contains("experiment[0].repeats: must be an integer from 1"),
            "{e}"
        );
        let e = grid("repeats = \"3\"", "", BASE).unwrap_err();
        assert!(e.contains("sweep.repeats"), "{e}");
        let e = grid("", "", BASE)
            .and_then(|_| {
                Grid::parse(
                    &format!(
                        "[sweep]\nname = \"r\"\nseed = {}\nrepeats = 2\n[[experiment]]\nname = \"e\"\ndataset = \"cifar10\"\n",
                        i64::MAX
                    ),
                    "r.toml",
                )
                .map_err(|e| e.to_string())
            })
            .unwrap_err();
        assert!(e.contains("go past the largest seed"), "{e}");
    }

    #[test]
    fn repeats_count_against_max_trials() {
        let e = grid("repeats = 3\nmax_trials = 5", "", BASE).unwrap_err();
        assert!(e.contains("6 trials"), "{e}");
    }
}
