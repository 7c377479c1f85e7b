//! The report's figures, drawn with plotters onto its SVG backend (for the HTML and the `.svg`
//! files) and its bitmap backend (encoded to `.png`). A figure is plain data ([`Plot`]) built by
//! the pure report code; this module only draws it.
//!
//! Text in PNGs is rasterised with the embedded DejaVu Sans (see `fonts/LICENSE`), registered
//! with plotters' `ab_glyph` backend, so no system font is needed.

mod confusion;
mod curves;
mod scatter;

use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::{FontDesc, FontFamily, FontStyle, register_font};

pub use confusion::{ConfusionPlot, Panel};
pub use curves::{CurvePlot, Series};
pub use scatter::ScatterPlot;

/// DejaVu Sans, embedded: plotters' `ab_glyph` text needs font bytes, and a fresh machine may
/// have no system font at all.
static FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");

/// A figure to draw.
#[derive(Debug, Clone, PartialEq)]
pub enum Plot {
    /// Train and test confusion matrices side by side.
    Confusion(ConfusionPlot),
    /// Lines per configuration over epochs, with a ±1 std band for repeats.
    Curves(CurvePlot),
    /// A hyperparameter against the metric, a point per trial.
    Scatter(ScatterPlot),
}

/// A figure could not be drawn or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DrawError(pub String);

fn err(e: impl std::fmt::Display) -> DrawError {
    DrawError(e.to_string().to_lowercase())
}

/// Registers the embedded font as plotters' `sans-serif`, once.
fn ensure_font() -> Result<(), DrawError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok =
        *REGISTERED.get_or_init(|| register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(DrawError("the embedded font does not load".into()))
    }
}

/// The report's font at `size` pixels.
fn font(size: f64) -> FontDesc<'static> {
    FontDesc::new(FontFamily::SansSerif, size, FontStyle::Normal)
}

/// Width and height of `text` in `font`, in pixels (0 when it cannot be measured).
fn text_size(font: &FontDesc<'_>, text: &str) -> (u32, u32) {
    font.box_size(text).unwrap_or((0, 0))
}

impl Plot {
    /// Width and height in pixels.
    pub fn size(&self) -> Result<(u32, u32), DrawError> {
        ensure_font()?;
        Ok(match self {
            Plot::Confusion(p) => p.geometry().size(),
            Plot::Curves(p) => p.size(),
            Plot::Scatter(p) => p.size(),
        })
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, plotters::coord::Shift>,
    ) -> Result<(), DrawError> {
        root.fill(&WHITE).map_err(err)?;
        match self {
            Plot::Confusion(p) => p.draw(root),
            Plot::Curves(p) => p.draw(root),
            Plot::Scatter(p) => p.draw(root),
        }?;
        root.present().map_err(err)
    }

    /// The figure as an SVG document.
    pub fn svg(&self) -> Result<String, DrawError> {
        let size = self.size()?;
        let mut out = String::new();
        guarded(|| {
            let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
            self.draw(&root)
        })?;
        Ok(out)
    }

    /// The figure as a PNG image.
    pub fn png(&self) -> Result<Vec<u8>, DrawError> {
        let (w, h) = self.size()?;
        let mut rgb = vec![255u8; (w as usize) * (h as usize) * 3];
        guarded(|| {
            let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
            self.draw(&root)
        })?;
        encode_png(&rgb, w, h)
    }
}

/// Runs a drawing closure, turning a panic inside the plotting library into an error: a figure
/// that cannot be drawn must not take the coordinator down.
fn guarded(f: impl FnOnce() -> Result<(), DrawError>) -> Result<(), DrawError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => Err(DrawError("the plotting library panicked".into())),
    }
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, DrawError> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(err)?;
        writer.write_image_data(rgb).map_err(err)?;
        writer.finish().map_err(err)?;
    }
    Ok(out)
}

/// Matplotlib's `tab10` palette, for lines.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
