//! The report as a document: a list of blocks (headings, paragraphs, tables, lists, figures)
//! that [`super::markdown`] and [`super::html`] render, and the figures to draw. Pure: built
//! from the parsed results only.

use std::collections::HashSet;

use super::analysis::{self, Series, View, best_config, confused_pairs, curves, plural};
use super::figures::{ConfusionPlot, CurvePlot, Panel, Plot, ScatterPlot};
use super::importance::Method;
use super::summary::{self, Counts, MAX_LOG_LINKS, Summaries, Summary};
use super::tables::{self, Metric, Table, fmt_stat};
use sweep_common::grid::Param;
use sweep_common::results::Results;

/// Confused pairs listed per trial.
pub const TOP_PAIRS_TRIAL: usize = 3;
/// Confused pairs listed per experiment.
pub const TOP_PAIRS_EXPERIMENT: usize = 5;
/// Confusion-matrix figures drawn per experiment (the first trials in grid order), so that a
/// huge sweep does not make a huge page.
pub const MAX_CONFUSION_FIGURES: usize = 100;
/// Rows of an experiment's trials table: past it, the best and the worst half of this by test
/// accuracy, so that a huge sweep does not make a huge page (every trial is in `results.csv`).
pub const MAX_TRIAL_ROWS: usize = 10_000;

/// A piece of inline text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Span {
    /// Plain text.
    Text(String),
    /// Bold text.
    Strong(String),
    /// Code (names of files, experiments).
    Code(String),
    /// A link to a file of the output folder (`href` relative to it), shown as `text`.
    Link {
        /// What shows.
        text: String,
        /// The file, relative to the output folder.
        href: String,
    },
}

/// A block of the document.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A heading; level 1 is the document's title. `id` is an anchor for the HTML contents.
    Heading {
        /// 1 to 4.
        level: u8,
        /// Its text.
        text: String,
        /// Anchor id (HTML).
        id: Option<String>,
    },
    /// A paragraph.
    Paragraph(Vec<Span>),
    /// A table with an optional caption.
    Table {
        /// Caption above the table.
        caption: Option<String>,
        /// The table.
        table: Table,
    },
    /// A bulleted list.
    List(Vec<Vec<Span>>),
    /// A figure, drawn into `figures/<stem>.svg` and `.png`.
    Figure {
        /// File stem under `figures/`.
        stem: String,
        /// Caption.
        caption: String,
    },
}

/// The whole report.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Title of the page.
    pub title: String,
    /// The content, in order.
    pub blocks: Vec<Block>,
    /// Every figure referenced by a [`Block::Figure`], by stem.
    pub figures: Vec<(String, Plot)>,
}

fn text(s: impl Into<String>) -> Span {
    Span::Text(s.into())
}

/// A file-name-safe version of `s`: ASCII letters, digits, `-`, `_` and `.` kept, the rest `_`.
pub fn sanitize(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    if out.is_empty() || out.starts_with('.') {
        out.insert(0, '_');
    }
    out
}

/// Hands out unique figure stems, unique even where file names ignore case (macOS, Windows).
#[derive(Default)]
struct Stems(HashSet<String>);

impl Stems {
    fn unique(&mut self, base: &str) -> String {
        let base = sanitize(base);
        let mut stem = base.clone();
        let mut i = 2;
        while !self.0.insert(stem.to_ascii_lowercase()) {
            stem = format!("{base}-{i}");
            i += 1;
        }
        stem
    }
}

struct Builder {
    blocks: Vec<Block>,
    figures: Vec<(String, Plot)>,
    stems: Stems,
}

impl Builder {
    fn heading(&mut self, level: u8, text: impl Into<String>) {
        self.blocks.push(Block::Heading {
            level,
            text: text.into(),
            id: None,
        });
    }

    fn para(&mut self, spans: Vec<Span>) {
        self.blocks.push(Block::Paragraph(spans));
    }

    fn table(&mut self, caption: Option<&str>, table: Table) {
        self.blocks.push(Block::Table {
            caption: caption.map(str::to_owned),
            table,
        });
    }

    fn figure(&mut self, base: &str, plot: Plot, caption: String) {
        let stem = self.stems.unique(base);
        self.blocks.push(Block::Figure {
            stem: stem.clone(),
            caption,
        });
        self.figures.push((stem, plot));
    }
}

fn trials_word(n: usize) -> String {
    if n == 1 {
        "1 trial".to_owned()
    } else {
        format!("{n} trials")
    }
}

fn status_counts(c: &Counts) -> String {
    format!(
        "{}: {} succeeded, {} failed, {} running, {} pending{}{}",
        trials_word(c.trials),
        c.succeeded,
        c.failed,
        c.running,
        c.pending,
        match c.stopped.saturating_sub(c.budget) {
            0 => String::new(),
            n => format!(", {n} stopped early"),
        },
        match c.budget {
            0 => String::new(),
            n => format!(", {n} not run (budget)"),
        }
    )
}

/// Builds the report of `results`.
pub fn build(results: &Results<'static>) -> Document {
    let mut summaries = Summaries::of(results);
    summaries.settle();
    build_with(results, &summaries)
}

/// Builds the report of the sweep `header` describes (its trials are not read) from its
/// experiments' `summaries` ([`Summaries`], made a trial at a time by [`super::pass::Pass`]).
pub fn build_with(header: &Results<'_>, summaries: &Summaries) -> Document {
    let mut b = Builder {
        blocks: Vec::new(),
        figures: Vec::new(),
        stems: Stems::default(),
    };
    let title = format!("Sweep {}: report", header.sweep);
    b.heading(1, title.clone());
    let all = summaries.counts();
    b.para(vec![
        text("Grid file "),
        Span::Code(header.grid_file.clone()),
        text(format!(
            "; {}. Accuracies are in %; \"test\" is the held-out part of the official training \
             set, as in the lab.",
            status_counts(&all)
        )),
    ]);
    if let n @ 1.. = all.budget {
        b.para(vec![
            Span::Strong("Budget:".into()),
            text(format!(
                " the budget ([sweep] max_hours) stopped {} before they ran: the estimate said \
                 they would exceed it.",
                trials_word(n)
            )),
        ]);
    }
    if !header.finished {
        b.para(vec![
            Span::Strong("Partial report:".into()),
            text(" the sweep has not finished; trials still running or pending show as \"-\"."),
        ]);
    }
    for s in &summaries.experiments {
        experiment(&mut b, s);
    }
    Document {
        title,
        blocks: b.blocks,
        figures: b.figures,
    }
}

fn axes_sentence(view: &View<'_>) -> String {
    let described: Vec<String> = view
        .axes
        .iter()
        .map(|a| {
            let label = analysis::label(a.param);
            // Values with commas of their own (models' labels) are listed in their key below.
            if a.shown.iter().any(|s| s.contains(',')) {
                format!("{label} ({} values, listed below)", a.shown.len())
            } else {
                format!("{label} ({})", a.shown.join(", "))
            }
        })
        .collect();
    let mut s = if described.is_empty() {
        "Nothing varies: one configuration.".to_owned()
    } else {
        format!("Varies {}.", described.join(" and "))
    };
    let seeds = view
        .experiment
        .axes
        .iter()
        .find(|a| a.param == sweep_common::grid::Param::Seed);
    if view.repeats {
        s.push_str(&match seeds {
            Some(a) => format!(
                " Each configuration ran with {} seeds ({});",
                a.values.len(),
                a.values.join(", ")
            ),
            None => " Some configurations ran more than once;".to_owned(),
        });
        s.push_str(
            " tables show the mean ± sample standard deviation over the runs that succeeded, \
             and their number n; curves show the mean with a ±1 std band.",
        );
    }
    s
}

fn experiment(b: &mut Builder, s: &Summary) {
    let view = s.view();
    let view = &view;
    let e = &view.experiment;
    b.blocks.push(Block::Heading {
        level: 2,
        text: e.title.clone().unwrap_or_else(|| e.name.clone()),
        id: Some(format!("exp-{}", sanitize(&e.name))),
    });
    b.para(vec![
        text("Experiment "),
        Span::Code(e.name.clone()),
        text(format!(" on {}; {}.", e.dataset, status_counts(&s.counts))),
    ]);
    b.para(vec![text(axes_sentence(view))]);
    if let Some(t) = tables::models(view) {
        b.table(Some(tables::MODELS_CAPTION), t);
    }

    b.heading(3, "Final accuracies");
    if view.axes.len() == 2 {
        for m in Metric::ALL {
            if let Some(t) = tables::pivot(view, m) {
                b.table(Some(m.title()), t);
            }
        }
    } else if view.axes.len() > 2 && view.experiment.table.is_some() {
        // The layout named in the grid file: one pivot per combination of the other axes.
        for m in Metric::ALL {
            for (caption, t) in tables::pivot_slices(view, m) {
                b.table(Some(&format!("{} ({caption})", m.title())), t);
            }
        }
    } else {
        b.table(None, tables::configurations(view));
    }
    b.para(vec![text(
        "The gap is the final training accuracy minus the final test accuracy, in percentage \
         points; a large gap means the model overfits its training data.",
    )]);
    best(b, s, view);
    importance(b, s);

    b.heading(3, "Trials");
    trials_table(b, s);
    failures(b, s);
    program_logs(b, s);
    early_stopping(b, s);

    b.heading(3, "Learning curves");
    learning_curves(b, s, view);
    hyperparameter_scatters(b, s);

    b.heading(3, "Most confused classes");
    confusion(b, s);
}

/// The trials table: every trial, or past [`MAX_TRIAL_ROWS`] the best and the worst half of
/// that by test accuracy (no accuracy ranks last), in grid order.
fn trials_table(b: &mut Builder, s: &Summary) {
    let shown = s.ranked.shown();
    let n = s.counts.trials;
    if n > MAX_TRIAL_ROWS {
        let half = MAX_TRIAL_ROWS / 2;
        b.para(vec![text(format!(
            "The best {half} and the worst {half} of the {n} trials by test accuracy (a trial \
             without one ranks last), in grid order; every trial is in results.csv."
        ))]);
    }
    b.table(None, tables::trials(&shown));
}

/// Each varied hyperparameter's share of the final test accuracy's variance
/// ([`super::importance`]).
fn importance(b: &mut Builder, s: &Summary) {
    let params = s.varied();
    if params.is_empty() {
        return;
    }
    b.heading(3, "Hyperparameter importance");
    let imp = match s.importance() {
        Ok(imp) => imp,
        Err(e) => {
            b.para(vec![text(format!("Not computed: {e}."))]);
            return;
        }
    };
    let mut rows: Vec<Vec<String>> = params
        .iter()
        .zip(&imp.shares)
        .map(|(&p, share)| vec![analysis::label(p), format!("{:.1}", 100.0 * share)])
        .collect();
    if let Some(rest) = imp.rest {
        rows.push(vec![
            "Interactions and noise".to_owned(),
            format!("{:.1}", 100.0 * rest),
        ]);
    }
    b.table(
        None,
        Table {
            header: vec![
                "Hyperparameter".to_owned(),
                "Share of the test accuracy's variance (%)".to_owned(),
            ],
            rows,
            numeric: vec![false, true],
        },
    );
    b.para(vec![text(match imp.method {
        Method::Exact => format!(
            "Exact main-effect variance decomposition over the {} succeeded trials of a full \
             grid: each hyperparameter's share is the variance of the mean test accuracy of its \
             values; what the main effects leave is the interactions between hyperparameters \
             and the noise between repeats.",
            imp.trials
        ),
        Method::Estimated => format!(
            "Estimated over the {} succeeded trials (not a full grid, so the effects overlap and \
             need not sum to 100 %): epsilon squared of each hyperparameter alone, its values (a \
             number with more than {} values cut into that many bins of equal counts) as groups.",
            imp.trials,
            super::importance::MAX_LEVELS
        ),
    })]);
}

fn best(b: &mut Builder, s: &Summary, view: &View<'_>) {
    match &s.best {
        Some(t) => {
            let train = t
                .train
                .filter(|a| a.is_finite())
                .map_or_else(String::new, |a| format!(" (training {a:.2} %)"));
            b.para(vec![
                text("Best trial: "),
                Span::Strong(t.name.clone()),
                text(", test accuracy "),
                Span::Strong(format!("{:.2} %", t.test)),
                text(format!("{train}.")),
            ]);
        }
        None => b.para(vec![text("No trial has a result yet.")]),
    }
    if view.repeats {
        if let Some((c, stat)) = best_config(&view.configs) {
            let named: Vec<String> = view
                .axes
                .iter()
                .zip(&c.key)
                .map(|(a, v)| format!("{} = {}", analysis::label(a.param), a.show(*v)))
                .collect();
            let name = if named.is_empty() {
                c.label()
            } else {
                named.join(", ")
            };
            b.para(vec![
                text("Best configuration by mean test accuracy: "),
                Span::Strong(name),
                text(format!(", {}.", fmt_stat(&stat, true, " %"))),
            ]);
        }
    }
}

fn failures(b: &mut Builder, s: &Summary) {
    if !s.failures.is_empty() {
        b.heading(3, "Failures and retries");
        b.blocks.push(Block::List(s.failures.clone()));
    }
}

/// Links to the program trials' logs, failed trials first.
fn program_logs(b: &mut Builder, s: &Summary) {
    if s.logs.trials == 0 {
        return;
    }
    let mut items = s.logs.items();
    if s.logs.trials > MAX_LOG_LINKS {
        items.push(vec![text(format!(
            "and {} more trials: their logs are named in results.json (`logs`).",
            s.logs.trials - MAX_LOG_LINKS
        ))]);
    }
    b.heading(3, "Program logs");
    b.blocks.push(Block::List(items));
}

/// How much early stopping saved, and where it stopped trials ([`super::stopping`]).
fn early_stopping(b: &mut Builder, summary: &Summary) {
    // Trials the budget stopped never ran: they are no rule's decision (left out by the tally).
    let Some(s) = summary.stopping.summary() else {
        return;
    };
    b.heading(3, "Early stopping");
    b.para(vec![text(format!(
        "Trained {} of the {} epochs a full run trains ({:.0} %): {} stopped early.",
        s.trained,
        s.full,
        s.percent(),
        trials_word(s.stopped)
    ))]);
    b.table(
        None,
        tables::Table {
            header: ["Epoch", "Reached it", "Stopped there", "Went on"]
                .map(str::to_owned)
                .to_vec(),
            rows: s
                .rungs
                .iter()
                .map(|r| {
                    vec![
                        r.epoch.to_string(),
                        r.entered.to_string(),
                        r.stopped.to_string(),
                        r.entered.saturating_sub(r.stopped).to_string(),
                    ]
                })
                .collect(),
            numeric: vec![true; 4],
        },
    );
}

/// A figure of learning curves: its title, y axis, file stem suffix, y bounds and lines.
struct CurveSpec {
    title: String,
    y_label: String,
    suffix: String,
    y_bounds: (f64, f64),
    series: Vec<analysis::Curve>,
}

/// What the learning curves' titles say they are of: " of <trial>" (one trial), " for different
/// <axes>", or nothing.
fn curves_subject(s: &Summary, view: &View<'_>) -> String {
    if let (true, 1, [only]) = (
        view.axes.is_empty(),
        s.counts.trials,
        view.configs.as_slice(),
    ) {
        format!(" of {}", only.first)
    } else if view.axes.is_empty() {
        String::new()
    } else {
        let p: Vec<String> = view.axes.iter().map(|a| plural(a.param)).collect();
        format!(" for different {}", p.join(" and "))
    }
}

fn learning_curves(b: &mut Builder, s: &Summary, view: &View<'_>) {
    let e = &view.experiment;
    let label_of = |c: &analysis::Config| {
        if view.axes.is_empty() {
            summary::unlabelled(c)
        } else {
            c.label()
        }
    };
    let legend_title = (!view.axes.is_empty()).then(|| {
        let labels: Vec<String> = view.axes.iter().map(|a| analysis::label(a.param)).collect();
        labels.join(analysis::separator(&view.axes))
    });
    let different = curves_subject(s, view);
    let spec = |title: String, y_label: &str, suffix: &str, y_bounds, series| CurveSpec {
        title,
        y_label: y_label.to_owned(),
        suffix: suffix.to_owned(),
        y_bounds,
        series,
    };
    let mut specs = vec![
        spec(
            format!("Accuracy learning curves{different}"),
            "Test accuracy (%)",
            "test-accuracy",
            (0.0, 100.0),
            curves(&view.configs, Series::TestAccuracy, label_of),
        ),
        spec(
            format!("Training loss curves{different}"),
            "Training loss",
            "train-loss",
            (0.0, f64::INFINITY),
            curves(&view.configs, Series::TrainLoss, label_of),
        ),
    ];
    // A program trial's own scalars (issue 19): one figure per name, the first few names.
    let all = s.scalar_names.len();
    let names: Vec<&String> = s
        .scalar_names
        .iter()
        .take(analysis::MAX_SCALAR_NAMES)
        .collect();
    for name in &names {
        specs.push(spec(
            format!("{name} curves{different}"),
            name.as_str(),
            &format!("scalar-{name}"),
            (f64::NEG_INFINITY, f64::INFINITY),
            curves(&view.configs, Series::Scalar(name), label_of),
        ));
    }
    if specs.iter().all(|s| s.series.is_empty()) {
        b.para(vec![text("No epoch has been reported yet.")]);
        return;
    }
    for s in specs.into_iter().filter(|s| !s.series.is_empty()) {
        let plot = CurvePlot {
            title: s.title.clone(),
            x_label: "Epoch".into(),
            y_label: s.y_label,
            legend_title: legend_title.clone(),
            series: s.series,
            y_bounds: s.y_bounds,
        };
        b.figure(
            &format!("{}-{}", e.name, s.suffix),
            Plot::Curves(plot),
            s.title,
        );
    }
    if all > names.len() {
        b.para(vec![text(format!(
            "Curves of the first {} of {all} scalar names (in name order); every value is in \
             results.json.",
            names.len()
        ))]);
    }
}

/// One scatter per numeric hyperparameter that takes many values in the experiment
/// ([`summary::SCATTER_MIN_VALUES`]; every sampled key does): each trial's final test accuracy
/// (or the last before it was stopped) against its value, for the first
/// [`summary::MAX_SCATTER_POINTS`] trials that ended.
fn hyperparameter_scatters(b: &mut Builder, s: &Summary) {
    let mut first = true;
    for param in Param::ALL {
        if param == Param::Seed {
            continue;
        }
        let Some((points, lo, hi)) = s.scatter.of(param) else {
            continue;
        };
        if first {
            b.heading(3, "Hyperparameters against the test accuracy");
            if s.scatter.ended > s.scatter.drawn() {
                b.para(vec![text(format!(
                    "Each scatter shows the first {} of the {} trials that ended, in grid order; \
                     every trial is in results.csv.",
                    s.scatter.drawn(),
                    s.scatter.ended
                ))]);
            }
            first = false;
        }
        let title = format!("Final test accuracy against {}", analysis::label(param));
        let plot = ScatterPlot {
            title: title.clone(),
            x_label: analysis::label(param),
            y_label: "Test accuracy (%)".into(),
            points,
            log_x: ScatterPlot::wants_log(lo, hi),
            y_bounds: (0.0, 100.0),
        };
        b.figure(
            &format!("{}-scatter-{}", s.experiment.name, param.def().key),
            Plot::Scatter(plot),
            title,
        );
    }
}

fn acc_title(split: &str, acc: Option<f64>) -> String {
    match acc.filter(|a| a.is_finite()) {
        Some(a) => format!("{split} Acc = {a:.2} %"),
        None => format!("{split} Acc = -"),
    }
}

fn pairs_spans(pairs: &[analysis::ConfusedPair]) -> Vec<Vec<Span>> {
    pairs.iter().map(|p| vec![text(p.to_string())]).collect()
}

fn confusion(b: &mut Builder, s: &Summary) {
    let e = &s.experiment;
    let tally = &s.confusions;
    // The first trials with a matrix: those that get a figure (the summary keeps no other).
    let with_matrix = &s.confusion_trials;
    let pairs = tally
        .summed
        .as_ref()
        .map(|m| confused_pairs(m, &e.classes, TOP_PAIRS_EXPERIMENT))
        .unwrap_or_default();
    if tally.with_matrix == 0 {
        b.para(vec![text("No confusion matrix has been recorded yet.")]);
        return;
    }
    if !pairs.is_empty() {
        b.para(vec![text(format!(
            "Largest off-diagonal counts (true -> predicted) summed over the test splits of {}:",
            trials_word(tally.with_matrix)
        ))]);
        b.blocks.push(Block::List(pairs_spans(&pairs)));
    }
    b.heading(3, "Confusion matrices");
    if tally.with_matrix > MAX_CONFUSION_FIGURES {
        b.para(vec![text(format!(
            "Figures for the first {MAX_CONFUSION_FIGURES} of {} trials; every matrix is in \
             results.json.",
            tally.with_matrix
        ))]);
    }
    for t in with_matrix {
        let title = format!("Confusion Matrices for Training & Test Data for {}", t.name);
        let plot = ConfusionPlot {
            title: title.clone(),
            classes: e.classes.clone(),
            panels: vec![
                Panel {
                    title: acc_title("Train", t.train_accuracy),
                    matrix: t.train_confusion.as_deref().cloned(),
                },
                Panel {
                    title: acc_title("Test", t.test_accuracy),
                    matrix: t.test_confusion.as_deref().cloned(),
                },
            ],
        };
        b.figure(
            &format!("{}-confusion-{}", e.name, t.name),
            Plot::Confusion(plot),
            title,
        );
        let top = t
            .test_confusion
            .as_deref()
            .map(|m| confused_pairs(m, &e.classes, TOP_PAIRS_TRIAL))
            .unwrap_or_default();
        if !top.is_empty() {
            let list: Vec<String> = top.iter().map(ToString::to_string).collect();
            b.para(vec![text(format!(
                "Most confused (test split): {}.",
                list.join("; ")
            ))]);
        }
    }
}

#[cfg(test)]
mod stem_tests {
    use super::Stems;

    #[test]
    fn stems_stay_apart_where_file_names_ignore_case_or_lose_characters() {
        let mut s = Stems::default();
        assert_eq!(s.unique("p-Run_1"), "p-Run_1");
        assert_eq!(s.unique("p-run_1"), "p-run_1-2");
        assert_eq!(s.unique("p-run/1"), "p-run_1-3");
    }
}
