//! Code shared by the property tests of this folder and the fuzz targets in `fuzz/`.

pub mod requests;
