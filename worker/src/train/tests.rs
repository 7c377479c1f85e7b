//! Trainer tests.
