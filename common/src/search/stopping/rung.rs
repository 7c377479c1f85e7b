//! One rung of ASHA, judged: the rule both [`super::decide`] and [`super::Judge`] apply to a
//! rung's ranking, so the definition and the incremental judge cannot drift apart.
//!
//! A rung reached by `n` configurations so far has a quota of `floor(n / reduction)` (at least
//! one once no other configuration can reach it, so a finite grid always trains one to its
//! end) and a cutoff, the score of the quota-th best. A configuration is in the rung's top when
//! it ranks within the quota, or when its seeds cannot tell it from the cutoff: its seed mean
//! plus one standard error of that mean (over its seeds) reaches the cutoff. A configuration
//! arriving in the top goes on and one arriving below stops; a stopped one that is in the top
//! later (the rung grew, or others arrived below it) is promoted. Nothing caps how many pass:
//! as in the ASHA paper (Li et al., 2020, algorithm 2), a configuration that was in the top
//! 1/reduction of the rung as it stood is promoted, even when more than `floor(n /
//! reduction)` of the rung have been.

/// A configuration at the rung, as the rung sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Entry {
    /// Its score there (the objective's score of its seed mean; larger is better).
    pub score: f64,
    /// The standard error of that mean over its seeds (0 for one seed; NaN when a seed
    /// diverged, which never reaches the cutoff).
    pub error: f64,
    /// Its latest decision at the rung.
    pub was: Was,
}

/// A configuration's latest decision at a rung.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Was {
    /// None yet: it just arrived.
    Undecided,
    /// It went on (continued or promoted).
    Passed,
    /// It stopped there.
    Stopped,
}

/// What the rung does to one configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// It arrived in the top: it goes on.
    Continue,
    /// It arrived below the top: it stops.
    Stop,
    /// Stopped earlier, it is in the top now: it resumes.
    Promote,
}

/// The rung's quota: `floor(n / reduction)`, at least one when `closed` (no other
/// configuration can still reach the rung) and `n > 0`.
pub(super) fn quota(n: usize, reduction: usize, closed: bool) -> usize {
    let q = n / reduction.max(2);
    if closed && n > 0 { q.max(1) } else { q }
}

/// The verdicts on `ranked` (best first, ties already broken) with quota `quota`, as
/// (index into `ranked`, verdict): the arrivals in rank order, then the promotions in rank
/// order. Entries already decided and not promoted get none.
pub(super) fn verdicts(ranked: &[Entry], quota: usize) -> Vec<(usize, Verdict)> {
    let cutoff = quota
        .checked_sub(1)
        .and_then(|i| ranked.get(i))
        .map(|e| e.score);
    let in_top =
        |place: usize, e: &Entry| place < quota || cutoff.is_some_and(|c| e.score + e.error >= c);
    let arrivals = ranked
        .iter()
        .enumerate()
        .filter(|(_, e)| e.was == Was::Undecided)
        .map(|(i, e)| {
            let v = if in_top(i, e) {
                Verdict::Continue
            } else {
                Verdict::Stop
            };
            (i, v)
        });
    let promotions = ranked
        .iter()
        .enumerate()
        .filter(|(i, e)| e.was == Was::Stopped && in_top(*i, e))
        .map(|(i, _)| (i, Verdict::Promote));
    arrivals.chain(promotions).collect()
}

/// The standard error of the mean of `values` (one configuration's seeds at one epoch):
/// the sample standard deviation over the square root of the count, 0 for fewer than two
/// values. Added up in ascending order, so it does not depend on the seeds' order.
pub(super) fn standard_error(values: &mut [f64]) -> f64 {
    let k = values.len();
    if k < 2 {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mean = values.iter().sum::<f64>() / k as f64;
    let squares: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    (squares / (k - 1) as f64 / k as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(score: f64, error: f64, was: Was) -> Entry {
        Entry { score, error, was }
    }

    #[test]
    fn the_quota_is_a_floor_and_one_once_the_rung_is_closed() {
        assert_eq!(quota(2, 3, false), 0);
        assert_eq!(quota(2, 3, true), 1);
        assert_eq!(quota(0, 3, true), 0);
        assert_eq!(quota(9, 3, false), 3);
    }

    #[test]
    fn a_mean_within_one_standard_error_of_the_cutoff_passes() {
        // Quota 1: the cutoff is 10. 9.5 + 0.6 reaches it, 9.0 + 0.5 does not.
        let ranked = [
            entry(10.0, 0.0, Was::Passed),
            entry(9.5, 0.6, Was::Undecided),
            entry(9.0, 0.5, Was::Undecided),
        ];
        assert_eq!(
            verdicts(&ranked, 1),
            vec![(1, Verdict::Continue), (2, Verdict::Stop)]
        );
    }

    #[test]
    fn no_cap_a_stopped_configuration_in_the_top_is_promoted() {
        // Two passed already (more than the quota of 1); the stopped best is promoted anyway.
        let ranked = [
            entry(10.0, 0.0, Was::Stopped),
            entry(9.0, 0.0, Was::Passed),
            entry(8.0, 0.0, Was::Passed),
            entry(7.0, f64::NAN, Was::Undecided),
        ];
        assert_eq!(
            verdicts(&ranked, 1),
            vec![(3, Verdict::Stop), (0, Verdict::Promote)]
        );
    }

    #[test]
    fn a_rung_with_no_quota_stops_every_arrival() {
        let ranked = [entry(10.0, 5.0, Was::Undecided)];
        assert_eq!(verdicts(&ranked, 0), vec![(0, Verdict::Stop)]);
    }

    #[test]
    fn the_standard_error_ignores_order_and_is_zero_for_one_seed() {
        assert_eq!(standard_error(&mut [3.0]), 0.0);
        let a = standard_error(&mut [1.0, 2.0, 3.0]);
        let b = standard_error(&mut [3.0, 1.0, 2.0]);
        assert_eq!(a.to_bits(), b.to_bits());
        assert!((a - (1.0f64 / 3.0).sqrt()).abs() < 1e-12);
    }
}
