//! The confusion-matrix figure, like the lab's: one heatmap per split side by side, class names
//! on both axes (predicted across, true down), every cell annotated with its count in a colour
//! that contrasts with the cell.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontDesc, FontTransform};

use super::{DrawError, err, font, text_size};
use sweep_common::ConfusionMatrix;

const OUTER: i32 = 24;
const TITLE_FONT: f64 = 28.0;
const PANEL_TITLE_FONT: f64 = 23.0;
const LABEL_FONT: f64 = 18.0;
const AXIS_FONT: f64 = 20.0;
const GAP: i32 = 10;

/// Train and test confusion matrices of one trial, side by side.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfusionPlot {
    /// Figure title.
    pub title: String,
    /// Class names, by label.
    pub classes: Vec<String>,
    /// The panels, left to right.
    pub panels: Vec<Panel>,
}

/// One heatmap.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Panel title (`Train Acc = 56.92 %`).
    pub title: String,
    /// The matrix; `None` draws a "not recorded" panel.
    pub matrix: Option<ConfusionMatrix>,
}

/// Pixel layout of the figure.
pub(super) struct Geometry {
    n: usize,
    cell: i32,
    title_font: f64,
    axis_w: i32,
    ylabel_w: i32,
    xlabel_h: i32,
    grid_top: i32,
    panel_w: i32,
    height: i32,
}

impl Geometry {
    pub(super) fn size(&self) -> (u32, u32) {
        let w = self.panel_w * 2 + OUTER;
        (w.max(1) as u32, self.height.max(1) as u32)
    }

    /// Left edge of the grid of panel `p`.
    fn grid_left(&self, p: i32) -> i32 {
        OUTER + p * self.panel_w + self.axis_w + GAP + self.ylabel_w + GAP
    }

    fn grid_bottom(&self) -> i32 {
        self.grid_top + self.cell * self.n as i32
    }
}

/// Matplotlib's `Blues` colour map at `t` in [0, 1].
fn blues(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 9] = [
        (247, 251, 255),
        (222, 235, 247),
        (198, 219, 239),
        (158, 202, 225),
        (107, 174, 214),
        (66, 146, 198),
        (33, 113, 181),
        (8, 81, 156),
        (8, 48, 107),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |p: u8, q: u8| (f64::from(p) + (f64::from(q) - f64::from(p)) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Black or white, whichever reads better on `c`.
fn contrast(c: RGBColor) -> RGBColor {
    let lum = 0.299 * f64::from(c.0) + 0.587 * f64::from(c.1) + 0.114 * f64::from(c.2);
    if lum < 140.0 { WHITE } else { BLACK }
}

/// The colour of a cell: the square root of its share of the panel's largest count, so that
/// the off-diagonal confusions stay visible next to a dominant diagonal.
pub fn cell_colour(count: u64, max: u64) -> RGBColor {
    if max == 0 {
        return blues(0.0);
    }
    blues((count as f64 / max as f64).sqrt())
}

impl ConfusionPlot {
    fn n(&self) -> usize {
        self.panels
            .iter()
            .filter_map(|p| p.matrix.as_ref())
            .map(|m| m.classes)
            .max()
            .unwrap_or(self.classes.len())
            .max(1)
    }

    fn class(&self, i: usize) -> String {
        crate::report::analysis::class_name(&self.classes, i)
    }

    pub(super) fn geometry(&self) -> Geometry {
        let n = self.n();
        let cell = (600 / n as i32).clamp(14, 60);
        let label = font(LABEL_FONT);
        let longest = (0..n)
            .map(|i| text_size(&label, &self.class(i)).0 as i32)
            .max()
            .unwrap_or(0);
        let axis_h = text_size(&font(AXIS_FONT), "True Values").1 as i32;
        let panel_title_h = text_size(&font(PANEL_TITLE_FONT), "Test Acc").1 as i32;
        let grid_w = cell * n as i32;
        let panel_w = axis_h + GAP + longest + GAP + grid_w + OUTER * 2;
        let total_w = panel_w * 2 + OUTER;
        let mut title_font = TITLE_FONT;
        while title_font > 12.0
            && text_size(&font(title_font), &self.title).0 as i32 > total_w - 2 * OUTER
        {
            title_font -= 1.0;
        }
        let title_h = text_size(&font(title_font), &self.title).1 as i32;
        let grid_top = OUTER + title_h + 2 * GAP + panel_title_h + GAP;
        let xlabel_h = longest;
        let height = grid_top + grid_w + GAP + xlabel_h + 2 * GAP + axis_h + OUTER;
        Geometry {
            n,
            cell,
            title_font,
            axis_w: axis_h,
            ylabel_w: longest,
            xlabel_h,
            grid_top,
            panel_w,
            height,
        }
    }

    pub(super) fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawError> {
        let g = self.geometry();
        let (w, _) = g.size();
        root.draw(&Text::new(
            self.title.clone(),
            (w as i32 / 2, OUTER),
            TextStyle::from(font(g.title_font)).pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(err)?;
        for (p, panel) in self.panels.iter().enumerate().take(2) {
            self.draw_panel(root, &g, p as i32, panel)?;
        }
        Ok(())
    }

    /// Draws panel `p`: its labels, then its cells.
    fn draw_panel<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        g: &Geometry,
        p: i32,
        panel: &Panel,
    ) -> Result<(), DrawError> {
        let area = g.grid(p);
        self.draw_labels(root, g, p, &area, &panel.title)?;
        match panel.matrix.as_ref().filter(|m| m.is_square()) {
            Some(m) => draw_cells(root, g, &area, m),
            None => draw_not_recorded(root, &area),
        }
    }

    /// The panel's title, its axis titles and the class names along both axes of its grid.
    fn draw_labels<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        g: &Geometry,
        p: i32,
        area: &GridArea,
        title: &str,
    ) -> Result<(), DrawError> {
        let GridArea {
            left,
            top,
            bottom,
            mid_x,
            ..
        } = *area;
        root.draw(&Text::new(
            title.to_owned(),
            (mid_x, top - GAP),
            text(font(PANEL_TITLE_FONT), HPos::Center, VPos::Bottom),
        ))
        .map_err(err)?;
        // Axis titles: "True Values" up the left side, "Predicted Values" under the labels.
        let axis_x = OUTER + p * g.panel_w + g.axis_w / 2;
        root.draw(&Text::new(
            "True Values",
            (axis_x, (top + bottom) / 2),
            text(
                font(AXIS_FONT).transform(FontTransform::Rotate270),
                HPos::Center,
                VPos::Center,
            ),
        ))
        .map_err(err)?;
        root.draw(&Text::new(
            "Predicted Values",
            (mid_x, bottom + GAP + g.xlabel_h + 2 * GAP),
            text(font(AXIS_FONT), HPos::Center, VPos::Top),
        ))
        .map_err(err)?;
        for i in 0..g.n as i32 {
            let c = left + i * g.cell + g.cell / 2;
            let name = self.class(i as usize);
            root.draw(&Text::new(
                name.clone(),
                (left - GAP, top + i * g.cell + g.cell / 2),
                text(font(LABEL_FONT), HPos::Right, VPos::Center),
            ))
            .map_err(err)?;
            root.draw(&Text::new(
                name,
                (c, bottom + GAP),
                text(
                    font(LABEL_FONT).transform(FontTransform::Rotate270),
                    HPos::Right,
                    VPos::Center,
                ),
            ))
            .map_err(err)?;
        }
        Ok(())
    }
}

/// Where one panel's grid of cells lies, in pixels.
#[derive(Debug, Clone, Copy)]
struct GridArea {
    left: i32,
    right: i32,
    top: i32,
    bottom: i32,
    mid_x: i32,
}

impl Geometry {
    /// The grid of panel `p`.
    fn grid(&self, p: i32) -> GridArea {
        let left = self.grid_left(p);
        let right = left + self.cell * self.n as i32;
        GridArea {
            left,
            right,
            top: self.grid_top,
            bottom: self.grid_bottom(),
            mid_x: (left + right) / 2,
        }
    }
}

/// A text style anchored at (`h`, `v`).
fn text(f: FontDesc<'static>, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle::from(f).pos(Pos::new(h, v))
}

/// The cells of matrix `m`, each coloured by its count and annotated where the cells are large
/// enough, then the grid's border.
fn draw_cells<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    g: &Geometry,
    area: &GridArea,
    m: &ConfusionMatrix,
) -> Result<(), DrawError> {
    let max = m.counts.iter().copied().max().unwrap_or(0);
    let count_font = count_font(g.cell, max);
    for r in 0..m.classes.min(g.n) {
        for c in 0..m.classes.min(g.n) {
            let count = m.get(r, c);
            let colour = cell_colour(count, max);
            let (x0, y0) = (area.left + c as i32 * g.cell, area.top + r as i32 * g.cell);
            root.draw(&Rectangle::new(
                [(x0, y0), (x0 + g.cell, y0 + g.cell)],
                colour.filled(),
            ))
            .map_err(err)?;
            if let Some(size) = count_font {
                root.draw(&Text::new(
                    count.to_string(),
                    (x0 + g.cell / 2, y0 + g.cell / 2),
                    font(size)
                        .color(&contrast(colour))
                        .pos(Pos::new(HPos::Center, VPos::Center)),
                ))
                .map_err(err)?;
            }
        }
    }
    root.draw(&Rectangle::new(
        [(area.left, area.top), (area.right, area.bottom)],
        RGBColor(120, 120, 120).stroke_width(1),
    ))
    .map_err(err)
}

/// An empty grid with "not recorded" in its middle, for a panel without a matrix.
fn draw_not_recorded<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &GridArea,
) -> Result<(), DrawError> {
    root.draw(&Rectangle::new(
        [(area.left, area.top), (area.right, area.bottom)],
        BLACK.stroke_width(1),
    ))
    .map_err(err)?;
    root.draw(&Text::new(
        "not recorded",
        (area.mid_x, (area.top + area.bottom) / 2),
        text(font(AXIS_FONT), HPos::Center, VPos::Center),
    ))
    .map_err(err)
}

/// The largest font (at most 18 px) in which the widest count fits its cell, `None` when the
/// cells are too small to annotate legibly.
fn count_font(cell: i32, max: u64) -> Option<f64> {
    let widest = max.to_string();
    let mut size = 18.0;
    while size >= 9.0 {
        if (text_size(&font(size), &widest).0 as i32) <= cell - 10 {
            return Some(size);
        }
        size -= 1.0;
    }
    None
}
