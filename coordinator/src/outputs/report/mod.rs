//! The sweep's report, made from `results.json` alone (so `coordinator report --out DIR` can
//! remake it at any time without retraining): `report.md`, a self-contained `report.html`,
//! `results.csv`, `epochs.csv` and every figure as `figures/<stem>.svg` and `.png`.
//!
//! [`write`] reads `results.json` as a stream of trials ([`stream`]) in one pass ([`pass`]) that
//! writes the CSV rows and TensorBoard runs as each trial comes and keeps only what the document
//! needs (no confusion matrix but those drawn), so its memory does not grow with the curves and
//! matrices of a big sweep. Everything but the file I/O is pure: [`parse`] reads the document
//! ([`sweep_common::results`], its one model), [`analysis`] groups
//! trials into configurations and aggregates, [`tables`] and [`doc`] lay out the content,
//! [`markdown`], [`html`] and [`csv`] render it, [`figures`] draws the plots.

pub mod analysis;
pub mod compare;
pub mod csv;
pub mod doc;
pub mod figures;
pub mod html;
pub mod importance;
pub mod markdown;
pub mod pass;
pub mod rows;
pub mod stopping;
pub mod stream;
pub mod summary;
pub mod tables;
pub mod views;

use std::collections::HashMap;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use sweep_common::results::FORMAT;
pub use sweep_common::results::Results;

/// Why the report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `results.json` could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `results.json` is not a results file.
    #[error("{path} is not a valid results file: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: serde_json::Error,
    },
    /// `results.json` was written by a newer coordinator.
    #[error(
        "{path} has results format {found}; this coordinator reads format {} or older",
        FORMAT
    )]
    Format {
        /// The file.
        path: PathBuf,
        /// Its format.
        found: u32,
    },
    /// An output could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A figure could not be drawn.
    #[error("cannot draw figure {stem}: {source}")]
    Draw {
        /// The figure's file stem.
        stem: String,
        /// What went wrong.
        source: figures::DrawError,
    },
}

/// The files a report consists of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportPaths {
    /// `report.md`.
    pub markdown: PathBuf,
    /// `report.html`.
    pub html: PathBuf,
    /// `results.csv`.
    pub results_csv: PathBuf,
    /// `epochs.csv`.
    pub epochs_csv: PathBuf,
    /// Every figure file (`.svg` and `.png`), in document order.
    pub figures: Vec<PathBuf>,
    /// TensorBoard's event files (`tensorboard/...`, see [`crate::tensorboard`]).
    pub tensorboard: Vec<PathBuf>,
}

impl ReportPaths {
    /// Every file, the documents first.
    pub fn all(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = vec![
            &self.html,
            &self.markdown,
            &self.results_csv,
            &self.epochs_csv,
        ];
        v.extend(self.figures.iter().map(PathBuf::as_path));
        v.extend(self.tensorboard.iter().map(PathBuf::as_path));
        v
    }
}

/// A figure drawn both ways.
#[derive(Debug, Clone)]
pub struct RenderedFigure {
    /// File stem under `figures/`.
    pub stem: String,
    /// SVG text.
    pub svg: String,
    /// PNG bytes.
    pub png: Vec<u8>,
}

/// Every output of a report, in memory.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// `report.md`.
    pub markdown: String,
    /// `report.html`.
    pub html: String,
    /// `results.csv`.
    pub results_csv: String,
    /// `epochs.csv`.
    pub epochs_csv: String,
    /// The figures.
    pub figures: Vec<RenderedFigure>,
}

/// Parses `results.json` text; `path` names it in errors.
pub fn parse(text: &str, path: &Path) -> Result<Results<'static>, Error> {
    let results: Results<'static> = serde_json::from_str(text).map_err(|source| Error::Parse {
        path: path.to_owned(),
        source,
    })?;
    checked(results, path)
}

/// Reads and parses the `results.json` at `path` as a stream ([`stream`]): its text is never
/// held whole (a sweep of 100 000 trials writes about a gigabyte), only the document it
/// describes.
pub fn read(path: &Path) -> Result<Results<'static>, Error> {
    let mut trials = Vec::new();
    let header = stream::each_trial(path, |t| {
        trials.push(t);
        Ok(())
    })?;
    Ok(Results { trials, ..header })
}

/// `results` if this coordinator reads its format.
fn checked(results: Results<'static>, path: &Path) -> Result<Results<'static>, Error> {
    if results.format > FORMAT {
        return Err(Error::Format {
            path: path.to_owned(),
            found: results.format,
        });
    }
    Ok(results)
}

/// Makes every output of the report of `results`, without touching the disk.
pub fn render(results: &Results<'static>) -> Result<Rendered, Error> {
    let mut summaries = summary::Summaries::new(&results.experiments);
    let mut rows = rows::Spool::memory();
    for t in &results.trials {
        let x = summaries.add(t);
        rows.add(x, t, summaries.axes(x))
            .map_err(|source| Error::Write {
                path: PathBuf::from("report.html"),
                source,
            })?;
    }
    summaries.settle();
    let document = doc::build_with(results, &summaries);
    let figures = draw(&document)?;
    let svgs = figures
        .iter()
        .map(|f| (f.stem.as_str(), f.svg.as_str()))
        .collect();
    let mut html = Vec::new();
    write_html(&document, &svgs, &summaries, &mut rows, &mut html).map_err(|source| {
        Error::Write {
            path: PathBuf::from("report.html"),
            source,
        }
    })?;
    Ok(Rendered {
        markdown: markdown::render(&document),
        html: String::from_utf8_lossy(&html).into_owned(),
        results_csv: csv::results_csv(results),
        epochs_csv: csv::epochs_csv(results),
        figures,
    })
}

/// Draws every figure of `document`.
fn draw(document: &doc::Document) -> Result<Vec<RenderedFigure>, Error> {
    document
        .figures
        .iter()
        .map(|(stem, plot)| draw_figure(stem, plot))
        .collect()
}

/// Draws the figure `stem`.
fn draw_figure(stem: &str, plot: &figures::Plot) -> Result<RenderedFigure, Error> {
    let draw = |source| Error::Draw {
        stem: stem.to_owned(),
        source,
    };
    Ok(RenderedFigure {
        stem: stem.to_owned(),
        svg: plot.svg().map_err(draw)?,
        png: plot.png().map_err(draw)?,
    })
}

/// Writes `report.html` into `out`: `document` with its figures inlined (`svgs`, by stem) and
/// the comparison views of `summaries`, their rows read from `rows`.
fn write_html(
    document: &doc::Document,
    svgs: &HashMap<&str, &str>,
    summaries: &summary::Summaries,
    rows: &mut rows::Spool,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let data = compare::data(summaries);
    let parts = compare::embedded_parts(&data);
    // One page, the rows written where `split` says: not copied into a second string.
    let (page, split) = html::render_parts(document, svgs, &parts);
    let (before, after) = page.split_at(split);
    out.write_all(before.as_bytes())?;
    if !parts.1.is_empty() {
        let own: Vec<Vec<sweep_common::grid::Param>> = summaries
            .experiments
            .iter()
            .map(summary::Summary::varied)
            .collect();
        rows.write_rows(&compare::all_varied(&own), &own, out)?;
    }
    out.write_all(after.as_bytes())
}

/// Where `path` is written before it is renamed into place: `path` with `.tmp` added.
fn temporary(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    PathBuf::from(tmp)
}

pub(crate) fn write_file(path: &Path, contents: &[u8]) -> Result<(), Error> {
    let io = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let tmp = temporary(path);
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(contents).map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)
}

/// The pass over `path`'s trials; made again with the header known when the header's
/// experiments came after the trials.
fn pass_over(out_dir: &Path, path: &Path) -> Result<pass::Passed, Error> {
    let mut pass = pass::Pass::start(out_dir)?;
    let seen = std::cell::RefCell::new(None);
    let header = stream::each_trial_with(
        path,
        |h| *seen.borrow_mut() = Some(h.experiments.clone()),
        |t| {
            if let Some(experiments) = seen.borrow_mut().take() {
                pass.header(&experiments);
            }
            pass.trial(t)
        },
    )?;
    let passed = pass.finish(header)?;
    if passed.complete {
        return Ok(passed);
    }
    let header = passed.header;
    drop(passed.rows);
    let mut pass = pass::Pass::start_with(out_dir, &header)?;
    let header = stream::each_trial(path, |t| pass.trial(t))?;
    pass.finish(header)
}

/// Reads `out_dir/results.json` and writes the report into `out_dir`, and TensorBoard's event
/// files into `out_dir/tensorboard/`: the CSVs, event files and comparison rows in one pass over
/// the trials as they are read ([`pass`]), then the documents and figures from the experiments'
/// summaries.
pub fn write(out_dir: &Path) -> Result<ReportPaths, Error> {
    let mut passed = pass_over(out_dir, &out_dir.join("results.json"))?;
    let document = doc::build_with(&passed.header, &passed.summaries);
    let figures_dir = out_dir.join("figures");
    std::fs::create_dir_all(&figures_dir).map_err(|source| Error::Write {
        path: figures_dir.clone(),
        source,
    })?;
    // Each figure is drawn and written in turn; only its SVG text is kept, for the page (a
    // bitmap and its PNG at a time, not every figure's).
    let mut figures = Vec::with_capacity(document.figures.len() * 2);
    let mut svg_texts = Vec::with_capacity(document.figures.len());
    for (stem, plot) in &document.figures {
        let f = draw_figure(stem, plot)?;
        let svg = figures_dir.join(format!("{stem}.svg"));
        let png = figures_dir.join(format!("{stem}.png"));
        write_file(&svg, f.svg.as_bytes())?;
        write_file(&png, &f.png)?;
        figures.extend([svg, png]);
        svg_texts.push((stem.as_str(), f.svg));
    }
    let svgs = svg_texts.iter().map(|(s, t)| (*s, t.as_str())).collect();
    let paths = ReportPaths {
        markdown: out_dir.join("report.md"),
        html: out_dir.join("report.html"),
        results_csv: passed.results_csv.clone(),
        epochs_csv: passed.epochs_csv.clone(),
        figures,
        tensorboard: std::mem::take(&mut passed.tensorboard),
    };
    write_file(&paths.markdown, markdown::render(&document).as_bytes())?;
    write_streamed(&paths.html, |out| {
        write_html(&document, &svgs, &passed.summaries, &mut passed.rows, out)
    })?;
    Ok(paths)
}

/// Writes `path` through `contents` under a temporary name, renamed into place when done.
fn write_streamed(
    path: &Path,
    contents: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<(), Error> {
    let io = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let tmp = temporary(path);
    let mut f = BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp).map_err(io)?);
    contents(&mut f).map_err(io)?;
    f.into_inner().map_err(|e| io(e.into_error()))?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests;
