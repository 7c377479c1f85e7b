//! The ways in: the `sweep.v1` gRPC service ([`service`]) with its authentication ([`auth`]) and
//! uploads ([`artifacts`]), and the live web view ([`web`]) with its Prometheus [`metrics`].

pub mod artifacts;
pub mod auth;
pub mod metrics;
pub mod service;
pub mod web;
