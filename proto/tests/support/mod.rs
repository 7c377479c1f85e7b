//! Code shared by the tests of this folder and the fuzz targets in `fuzz/`.

#![allow(dead_code)]

pub mod fixtures;
pub mod requests;
