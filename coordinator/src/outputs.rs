//! The ways out: `results.json` and `summary.md` ([`results`]), the report ([`report`]), what
//! people see while the sweep runs ([`status`]) and the terminal it is drawn on ([`console`]).

pub mod console;
pub mod report;
pub mod results;
pub mod status;
