//! Learning curves: one line per configuration over epochs, a ±1 std band where repeats give
//! one, and a legend titled after the varying axis, drawn beside the plot so it never hides a
//! line.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{DrawError, PALETTE, err, font, text_size};
use crate::report::analysis::Curve;

const WIDTH: i32 = 1100;
const HEIGHT: u32 = 640;
const LEGEND_FONT: f64 = 17.0;
const LEGEND_PAD: i32 = 16;
const SWATCH: i32 = 30;
const ROW: i32 = 26;
/// Characters of a legend entry shown (a model's label with another axis's value fits).
const MAX_LABEL: usize = 80;
/// Legend entries shown; the rest are summed up in one line.
const MAX_ENTRIES: usize = 30;

/// A learning-curve figure.
#[derive(Debug, Clone, PartialEq)]
pub struct CurvePlot {
    /// Title above the plot.
    pub title: String,
    /// X axis title.
    pub x_label: String,
    /// Y axis title.
    pub y_label: String,
    /// Legend title; `None` with one series draws no legend.
    pub legend_title: Option<String>,
    /// The lines.
    pub series: Vec<Curve>,
    /// Hard limits for the y axis (0-100 for accuracies).
    pub y_bounds: (f64, f64),
}

/// A line of a [`CurvePlot`].
pub type Series = Curve;

fn truncate(s: &str) -> String {
    if s.chars().count() <= MAX_LABEL {
        s.to_owned()
    } else {
        let head: String = s.chars().take(MAX_LABEL - 1).collect();
        format!("{head}…")
    }
}

impl CurvePlot {
    fn has_legend(&self) -> bool {
        self.legend_title.is_some() || self.series.len() > 1
    }

    /// The legend's text of each series shown, at most [`MAX_ENTRIES`]: its label, cut past
    /// [`MAX_LABEL`] characters, and told apart again where the cut left two alike.
    pub fn legend_labels(&self) -> Vec<String> {
        let cut = self
            .series
            .iter()
            .take(MAX_ENTRIES)
            .map(|s| truncate(&s.label))
            .collect();
        sweep_common::architecture::distinct(cut)
    }

    /// The legend's lines of text after its title: one per series, at most [`MAX_ENTRIES`].
    fn entries(&self) -> Vec<(Option<RGBColor>, String)> {
        let mut v: Vec<(Option<RGBColor>, String)> = self
            .legend_labels()
            .into_iter()
            .enumerate()
            .map(|(i, label)| (Some(PALETTE[i % PALETTE.len()]), label))
            .collect();
        if self.series.len() > MAX_ENTRIES {
            v.push((
                None,
                format!("… and {} more", self.series.len() - MAX_ENTRIES),
            ));
        }
        v
    }

    fn legend_width(&self) -> i32 {
        if !self.has_legend() {
            return 0;
        }
        let f = font(LEGEND_FONT);
        let title = self
            .legend_title
            .as_deref()
            .map_or(0, |t| text_size(&f, t).0 as i32);
        let labels = self
            .entries()
            .iter()
            .map(|(_, l)| text_size(&f, l).0 as i32 + SWATCH + 8)
            .max()
            .unwrap_or(0);
        title.max(labels) + 2 * LEGEND_PAD + 28
    }

    pub(super) fn size(&self) -> (u32, u32) {
        let rows = self.entries().len() as i32 + 2;
        let h = (HEIGHT as i32).max(rows * ROW + 80);
        ((WIDTH + self.legend_width()) as u32, h as u32)
    }

    /// The x and y ranges: every epoch, and every mean ± std, padded and clamped to the bounds.
    fn ranges(&self) -> ((i32, i32), (f64, f64)) {
        let points = self.series.iter().flat_map(|s| &s.points);
        let max_epoch = points.clone().map(|p| p.epoch).max().unwrap_or(1) as i32;
        let min_epoch = points.clone().map(|p| p.epoch).min().unwrap_or(1) as i32;
        let x = if max_epoch > min_epoch {
            (min_epoch, max_epoch)
        } else {
            (min_epoch - 1, max_epoch + 1)
        };
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for p in points {
            let sd = p.std.unwrap_or(0.0);
            for v in [p.mean - sd, p.mean + sd] {
                if v.is_finite() {
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
            }
        }
        if !lo.is_finite() || !hi.is_finite() {
            return (x, self.y_bounds);
        }
        let span = hi - lo;
        let pad = if span > 1e-9 {
            span * 0.06
        } else {
            hi.abs().max(1.0) * 0.05
        };
        let (b0, b1) = self.y_bounds;
        let y0 = (lo - pad).max(b0);
        let y1 = (hi + pad).min(b1);
        (x, if y1 > y0 { (y0, y1) } else { (b0, b1) })
    }

    pub(super) fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawError> {
        let (w, _) = self.size();
        let (plot, legend) = root.split_horizontally(w as i32 - self.legend_width());
        let ((x0, x1), (y0, y1)) = self.ranges();
        let mut chart = ChartBuilder::on(&plot)
            .caption(&self.title, font(24.0))
            .margin(18)
            .x_label_area_size(60)
            .y_label_area_size(80)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .label_style(font(17.0))
            .axis_desc_style(font(19.0))
            .x_labels(((x1 - x0) as usize + 1).min(16))
            .y_labels(10)
            .light_line_style(RGBColor(247, 247, 247))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()
            .map_err(err)?;
        let markers = x1 - x0 <= 40;
        for (i, s) in self.series.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            if s.points.iter().any(|p| p.std.is_some()) {
                let upper = s
                    .points
                    .iter()
                    .map(|p| (p.epoch as i32, p.mean + p.std.unwrap_or(0.0)));
                let lower = s
                    .points
                    .iter()
                    .rev()
                    .map(|p| (p.epoch as i32, p.mean - p.std.unwrap_or(0.0)));
                let band: Vec<(i32, f64)> = upper.chain(lower).collect();
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        band,
                        colour.mix(0.18).filled(),
                    )))
                    .map_err(err)?;
            }
        }
        for (i, s) in self.series.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let line: Vec<(i32, f64)> = s.points.iter().map(|p| (p.epoch as i32, p.mean)).collect();
            chart
                .draw_series(LineSeries::new(line.clone(), colour.stroke_width(2)))
                .map_err(err)?;
            if markers {
                chart
                    .draw_series(line.into_iter().map(|p| Circle::new(p, 3, colour.filled())))
                    .map_err(err)?;
            }
        }
        if self.has_legend() {
            self.draw_legend(&legend)?;
        }
        Ok(())
    }

    fn draw_legend<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawError> {
        let (w, _) = area.dim_in_pixel();
        let entries = self.entries();
        let rows = entries.len() as i32 + i32::from(self.legend_title.is_some());
        let top = 70;
        let (left, right) = (0, w as i32 - 16);
        let bottom = top + rows * ROW + 2 * LEGEND_PAD - 6;
        area.draw(&Rectangle::new(
            [(left, top), (right, bottom)],
            RGBColor(180, 180, 180).stroke_width(1),
        ))
        .map_err(err)?;
        let style = |h| TextStyle::from(font(LEGEND_FONT)).pos(Pos::new(h, VPos::Center));
        let mut y = top + LEGEND_PAD + ROW / 2 - 4;
        if let Some(t) = &self.legend_title {
            area.draw(&Text::new(
                t.clone(),
                ((left + right) / 2, y),
                style(HPos::Center),
            ))
            .map_err(err)?;
            y += ROW;
        }
        for (colour, label) in entries {
            let x = left + LEGEND_PAD;
            if let Some(colour) = colour {
                area.draw(&PathElement::new(
                    vec![(x, y), (x + SWATCH - 6, y)],
                    colour.stroke_width(3),
                ))
                .map_err(err)?;
            }
            area.draw(&Text::new(label, (x + SWATCH, y), style(HPos::Left)))
                .map_err(err)?;
            y += ROW;
        }
        Ok(())
    }
}
