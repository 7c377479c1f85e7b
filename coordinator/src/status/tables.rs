//! The live view's accuracy tables, laid out by the report's own code ([`crate::report`]) so
//! that they fill in during the sweep exactly as the final report will show them: pivots of
//! final test and training accuracy when an experiment has two layout axes, else one row per
//! configuration.

use sweep_common::grid::Grid;

use super::{ExperimentRow, TableView};
use crate::report::analysis;
use crate::report::model::Results;
use crate::report::tables::{self, Metric, Table};
use crate::results;
use crate::state::Scheduler;

fn view(caption: &str, t: Table) -> TableView {
    TableView {
        caption: caption.to_owned(),
        numeric: (0..t.header.len()).map(|i| t.is_numeric(i)).collect(),
        header: t.header,
        rows: t.rows,
    }
}

/// The state as the report reads it: the `results.json` document, without the disk.
fn results(grid: &Grid, s: &Scheduler) -> Option<Results> {
    let doc = results::collect(grid, "", s);
    serde_json::to_value(&doc)
        .and_then(serde_json::from_value)
        .ok()
}

/// Per experiment of `grid`, its accuracy tables now (none if the state cannot be read as
/// results, which only a bug would cause).
pub fn experiments(grid: &Grid, s: &Scheduler) -> Vec<ExperimentRow> {
    let Some(results) = results(grid, s) else {
        return Vec::new();
    };
    analysis::views(&results)
        .iter()
        .map(|v| {
            let tables = if v.axes.len() == 2 {
                [Metric::Test, Metric::Train]
                    .into_iter()
                    .filter_map(|m| tables::pivot(v, m).map(|t| view(m.title(), t)))
                    .collect()
            } else {
                vec![view("Final accuracies", tables::configurations(v))]
            };
            ExperimentRow {
                name: v.experiment.name.clone(),
                title: v.experiment.title.clone(),
                tables,
            }
        })
        .collect()
}
