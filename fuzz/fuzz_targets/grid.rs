//! The grid file parser on arbitrary bytes: never a panic; an error is located inside the file
//! and prints no control character; a grid that parses keeps the expansion's invariants.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../common/tests/support/grid.rs"]
mod grid;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = grid::check_bytes(data) {
        panic!("{e}");
    }
});
