//! `[sweep] max_hours`: the device-hours a sweep may spend. The coordinator stops leasing new
//! trials once its estimate says the next one would go past it (its scheduler's `budget`
//! module); here it is only read and checked.

use toml::Spanned;

use super::GridError;
use super::check::Checker;

/// Largest `max_hours`: a hundred years of one device, far past any sweep, so that a typo of
/// many zeros is caught.
pub(super) const MAX_HOURS: f64 = 876_000.0;

/// `[sweep] max_hours`, checked: a positive number of hours (`None`: no budget).
pub(super) fn max_hours(
    c: &Checker<'_>,
    value: Option<&Spanned<f64>>,
) -> Result<Option<f64>, GridError> {
    let Some(v) = value else { return Ok(None) };
    let hours = *v.get_ref();
    if hours.is_finite() && hours > 0.0 && hours <= MAX_HOURS {
        Ok(Some(hours))
    } else {
        Err(c.err(
            &v.span(),
            "sweep.max_hours",
            format!(
                "must be a positive number of device-hours, at most {MAX_HOURS}, got {hours} \
                 (0.5 is half an hour of one device; leave it out for no budget)"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::grid::Grid;

    fn grid(line: &str) -> Result<Grid, String> {
        let text = format!(
            "[sweep]\nname = \"b\"\n{line}\n[[experiment]]\nname = \"e\"\n\
             dataset = \"fashion-mnist\"\n[experiment.fixed]\nepochs = 2\n"
        );
        Grid::parse(&text, "b.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn hours_are_read_as_integers_or_fractions() {
        assert_eq!(grid("").map(|g| g.max_hours), Ok(None));
        assert_eq!(grid("max_hours = 2").map(|g| g.max_hours), Ok(Some(2.0)));
        assert_eq!(
            grid("max_hours = 0.25").map(|g| g.max_hours),
            Ok(Some(0.25))
        );
    }

    #[test]
    fn a_budget_that_is_not_a_positive_number_is_refused_where_it_is() {
        for bad in ["0", "-1", "0.0", "nan", "inf", "1e9"] {
            let e = grid(&format!("max_hours = {bad}")).unwrap_err();
            assert!(e.contains("b.toml:3"), "{bad}: {e}");
            assert!(e.contains("sweep.max_hours"), "{bad}: {e}");
            assert!(e.contains("positive number of device-hours"), "{bad}: {e}");
        }
        let e = grid("max_hours = \"2h\"").unwrap_err();
        assert!(e.contains("b.toml:3"), "{e}");
        assert!(e.contains("max_hours"), "{e}");
    }
}
