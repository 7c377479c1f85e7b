//! The comparison views' page assets, embedded in the coordinator so that `report.html` is
//! self-contained and the live view needs nothing from outside: `vendor.js` and `vendor.css`
//! (Apache ECharts and Tabulator, bundled from pinned npm packages by `views/build`; licences in
//! `views/LICENSES.md`), and our own `compare.js` and `compare.css`, which draw
//! [`super::compare`]'s data.

/// ECharts (parallel coordinates) and Tabulator (the trial table), minified; sets
/// `window.SweepVendor`.
pub const VENDOR_JS: &str = include_str!("views/vendor.js");
/// Tabulator's style sheet.
pub const VENDOR_CSS: &str = include_str!("views/vendor.css");
/// The views themselves; sets `window.SweepCompare`.
pub const COMPARE_JS: &str = include_str!("views/compare.js");
/// Their style.
pub const COMPARE_CSS: &str = include_str!("views/compare.css");
