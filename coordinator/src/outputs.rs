//! The ways out: `results.json` and `summary.md` ([`results`]), the report ([`report`]), what
//! people see while the sweep runs ([`status`]) and the terminal it is drawn on ([`console`]);
//! what a grid will cost before it runs ([`plan`]); what a stopping rule would have done to a
//! finished sweep ([`replay`]); TensorBoard's event files ([`tensorboard`]).

pub mod console;
pub mod plan;
pub mod replay;
pub mod report;
pub mod results;
pub mod status;
pub mod tensorboard;
