//! The core of the coordinator: the pure scheduling state machine ([`state`]), its one owner
//! ([`actor`]), the database it commits to ([`store`]), and what is made sure of before serving
//! (the folder locks, the state directory's permissions, the start-up checks).

pub mod actor;
pub(crate) mod lineage;
pub mod lock;
pub(crate) mod private;
pub(crate) mod startup;
pub mod state;
pub mod store;
