//! The report's pass over the trials of `results.json` (read as a stream, [`super::stream`]):
//! each trial's `results.csv` row, `epochs.csv` rows and TensorBoard run are written as it is
//! read (the first [`tensorboard::MAX_RUNS`] get a run), its comparison row goes to a spool
//! ([`super::rows`]), and what the document needs of it is summed into its experiment's
//! [`super::summary::Summary`]; the trial is then dropped. Every test matrix is added to its
//! experiment's sum ([`ConfusionTally`]).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use sweep_common::metrics::ConfusionMatrix;
use sweep_common::results::{Experiment, Results, Trial};

use super::rows::Spool;
use super::summary::Summaries;
use super::{Error, analysis, csv};
use crate::tensorboard;

/// Per experiment (by name), what its trials' confusion matrices add up to.
pub type Confusions = HashMap<String, ConfusionTally>;

/// An experiment's trials with a confusion matrix, and the sum of their test matrices.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfusionTally {
    /// Trials with a training or a test matrix.
    pub with_matrix: usize,
    /// The cell-wise sum of their test matrices ([`analysis::add_confusion`]).
    pub summed: Option<ConfusionMatrix>,
}

impl ConfusionTally {
    /// Counts `t`'s matrices in.
    pub fn add(&mut self, t: &Trial<'_>) {
        if t.train_confusion.is_none() && t.test_confusion.is_none() {
            return;
        }
        self.with_matrix += 1;
        if let Some(m) = t.test_confusion.as_deref() {
            analysis::add_confusion(&mut self.summed, m);
        }
    }
}

/// Each experiment's tally over `trials`, as [`Pass`] makes it a trial at a time.
pub fn confusions<'a>(trials: impl IntoIterator<Item = &'a Trial<'a>>) -> Confusions {
    let mut all = Confusions::new();
    for t in trials {
        all.entry(t.experiment.to_string()).or_default().add(t);
    }
    all
}

/// A file written a line at a time under a temporary name, renamed into place when finished.
struct Lines {
    path: PathBuf,
    tmp: PathBuf,
    file: BufWriter<File>,
}

impl Lines {
    fn create(path: PathBuf, header: &[String]) -> Result<Self, Error> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let file = File::create(&tmp).map_err(|source| Error::Write {
            path: tmp.clone(),
            source,
        })?;
        let mut lines = Lines {
            path,
            tmp,
            file: BufWriter::with_capacity(1 << 20, file),
        };
        lines.row(header)?;
        Ok(lines)
    }

    fn row(&mut self, cells: &[String]) -> Result<(), Error> {
        self.file
            .write_all(csv::line(cells).as_bytes())
            .map_err(|source| Error::Write {
                path: self.tmp.clone(),
                source,
            })
    }

    fn finish(self) -> Result<PathBuf, Error> {
        let io = |source| Error::Write {
            path: self.tmp.clone(),
            source,
        };
        let file = self.file.into_inner().map_err(|e| io(e.into_error()))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(io)?;
        Ok(self.path)
    }
}

/// The pass: the files written as trials come, and what is kept of them.
pub struct Pass<'o> {
    out_dir: &'o Path,
    results_csv: Lines,
    epochs_csv: Lines,
    runs: tensorboard::Runs,
    run_paths: Vec<PathBuf>,
    /// The experiments the header named before the trials.
    experiments: Vec<Experiment>,
    summaries: Option<Summaries>,
    rows: Spool,
}

/// What the pass leaves: the document's summaries and rows, and the files it wrote.
pub struct Passed {
    /// The results without their trials.
    pub header: Results<'static>,
    /// Each experiment's summary, settled ([`Summaries::settle`]).
    pub summaries: Summaries,
    /// The comparison views' rows.
    pub rows: Spool,
    /// False when the header's experiments came after the trials (a file the coordinator did
    /// not write): the trials were summed without their experiments' axes, and the pass must
    /// be made again with the header known ([`Pass::start_with`]).
    pub complete: bool,
    /// `results.csv`.
    pub results_csv: PathBuf,
    /// `epochs.csv`.
    pub epochs_csv: PathBuf,
    /// TensorBoard's event files, the experiment's first.
    pub tensorboard: Vec<PathBuf>,
}

/// The spool of the comparison views' rows, beside the report.
const ROWS_SPOOL: &str = ".report-rows.tmp";

impl<'o> Pass<'o> {
    /// Starts the CSV files in `out_dir`.
    pub fn start(out_dir: &'o Path) -> Result<Self, Error> {
        let epochs_header: Vec<String> =
            csv::EPOCHS_HEADER.iter().map(|s| (*s).to_owned()).collect();
        let spool = out_dir.join(ROWS_SPOOL);
        let rows = Spool::file(spool.clone()).map_err(|source| Error::Write {
            path: spool,
            source,
        })?;
        Ok(Pass {
            out_dir,
            results_csv: Lines::create(out_dir.join("results.csv"), &csv::results_header())?,
            epochs_csv: Lines::create(out_dir.join("epochs.csv"), &epochs_header)?,
            runs: tensorboard::Runs::default(),
            run_paths: Vec::new(),
            experiments: Vec::new(),
            summaries: None,
            rows,
        })
    }

    /// Starts the pass with the header (`header`'s experiments) known.
    pub fn start_with(out_dir: &'o Path, header: &Results<'_>) -> Result<Self, Error> {
        let mut pass = Pass::start(out_dir)?;
        pass.header(&header.experiments);
        Ok(pass)
    }

    /// Takes the header's experiments as read before the trials: they lay out the summaries.
    pub fn header(&mut self, experiments: &[Experiment]) {
        if self.summaries.is_none() {
            self.experiments = experiments.to_vec();
            self.summaries = Some(Summaries::new(experiments));
        }
    }

    /// Writes `t`'s rows and run, and sums what the document needs of it.
    pub fn trial(&mut self, t: Trial<'static>) -> Result<(), Error> {
        self.results_csv.row(&csv::results_row(&t))?;
        for row in csv::epoch_rows(&t) {
            self.epochs_csv.row(&row)?;
        }
        if let Some(run) = self.runs.add(&t) {
            self.run_paths
                .push(tensorboard::write_event_file(self.out_dir, &run)?);
        }
        let summaries = self.summaries.get_or_insert_with(|| Summaries::new(&[]));
        let x = summaries.add(&t);
        self.rows
            .add(x, &t, summaries.axes(x))
            .map_err(|source| Error::Write {
                path: self.out_dir.join(ROWS_SPOOL),
                source,
            })
    }

    /// Finishes the files: `header` is the document without its trials.
    pub fn finish(self, header: Results<'static>) -> Result<Passed, Error> {
        let root = self.runs.experiment_file(&header);
        let mut tensorboard = Vec::with_capacity(self.run_paths.len() + 1);
        tensorboard.push(tensorboard::write_event_file(self.out_dir, &root)?);
        tensorboard.extend(self.run_paths);
        let complete = self.summaries.is_none() || self.experiments == header.experiments;
        let mut summaries = self
            .summaries
            .unwrap_or_else(|| Summaries::new(&header.experiments));
        summaries.settle();
        Ok(Passed {
            header,
            summaries,
            rows: self.rows,
            complete,
            results_csv: self.results_csv.finish()?,
            epochs_csv: self.epochs_csv.finish()?,
            tensorboard,
        })
    }
}
