//! A hyperparameter against the metric: one point per trial (its final test accuracy, or the
//! last it reached where early stopping ended it), for keys with many numeric values (sampled
//! keys, long axes), on a log axis where the values span more than a decade.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{DrawError, PALETTE, err, font};

const WIDTH: u32 = 900;
const HEIGHT: u32 = 560;

/// A scatter of one hyperparameter against the metric.
#[derive(Debug, Clone, PartialEq)]
pub struct ScatterPlot {
    /// Title above the plot.
    pub title: String,
    /// X axis title (the hyperparameter).
    pub x_label: String,
    /// Y axis title.
    pub y_label: String,
    /// Points: the hyperparameter's value, the metric, and whether the trial was stopped early.
    pub points: Vec<(f64, f64, bool)>,
    /// Whether the x axis is logarithmic.
    pub log_x: bool,
    /// Hard limits for the y axis (0-100 for accuracies).
    pub y_bounds: (f64, f64),
}

/// Padded range of `values` (at least `min_span` wide).
fn padded(values: impl Iterator<Item = f64>, min_span: f64) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return None;
    }
    let pad = ((hi - lo) * 0.06).max(min_span / 2.0);
    Some((lo - pad, hi + pad))
}

impl ScatterPlot {
    pub(super) fn size(&self) -> (u32, u32) {
        (WIDTH, HEIGHT)
    }

    /// Whether values spanning `lo..hi` (all positive) read better on a log axis.
    pub fn wants_log(lo: f64, hi: f64) -> bool {
        lo > 0.0 && hi / lo > 20.0
    }

    pub(super) fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawError> {
        let x = |v: f64| if self.log_x { v.log10() } else { v };
        let (x0, x1) = padded(self.points.iter().map(|p| x(p.0)), 1e-3).unwrap_or((0.0, 1.0));
        let (b0, b1) = self.y_bounds;
        let (y0, y1) = padded(self.points.iter().map(|p| p.1), 1.0)
            .map_or((b0, b1), |(lo, hi)| (lo.max(b0), hi.min(b1)));
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, font(22.0))
            .margin(18)
            .x_label_area_size(60)
            .y_label_area_size(80)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        let log = self.log_x;
        let x_text = |v: &f64| {
            if log {
                format!("{:.1e}", 10f64.powf(*v))
            } else {
                format!("{v:.3}")
            }
        };
        chart
            .configure_mesh()
            .x_desc(if log {
                format!("{} (log scale)", self.x_label)
            } else {
                self.x_label.clone()
            })
            .y_desc(self.y_label.as_str())
            .label_style(font(15.0))
            .axis_desc_style(font(18.0))
            .x_label_formatter(&x_text)
            .x_labels(8)
            .y_labels(10)
            .light_line_style(RGBColor(247, 247, 247))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()
            .map_err(err)?;
        let ran = PALETTE[0];
        let stopped = RGBColor(150, 150, 150);
        chart
            .draw_series(
                self.points
                    .iter()
                    .filter(|p| p.2)
                    .map(|p| Circle::new((x(p.0), p.1), 4, stopped.stroke_width(2))),
            )
            .map_err(err)?
            .label("stopped early")
            .legend(move |(a, b)| Circle::new((a + 8, b), 4, stopped.stroke_width(2)));
        chart
            .draw_series(
                self.points
                    .iter()
                    .filter(|p| !p.2)
                    .map(|p| Circle::new((x(p.0), p.1), 4, ran.filled())),
            )
            .map_err(err)?
            .label("trained to the end")
            .legend(move |(a, b)| Circle::new((a + 8, b), 4, ran.filled()));
        if self.points.iter().any(|p| p.2) {
            chart
                .configure_series_labels()
                .label_font(font(15.0))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(180, 180, 180))
                .position(SeriesLabelPosition::LowerRight)
                .draw()
                .map_err(err)?;
        }
        Ok(())
    }
}
