//! The fault model of faultline: what can go wrong between services, and the means to make
//! it go wrong on purpose.
//!
//! A chaos run injects faults into the network between the services under test while the
//! harness drives traffic and the checkers judge invariants. This crate is where faults are
//! described and injected; it knows nothing about the services, the contracts or the report.
//!
//! - [`toxiproxy`]: an async client for Toxiproxy's HTTP API, which partitions, delays,
//!   throttles and cuts TCP connections between services.
//! - [`scenario`]: the scenario file format — workload, fault schedule, steady state,
//!   expectations — read strictly, with errors naming file and field.
//! - [`topology`]: the reference system's services, containers and faultable links.
//!
//! The nemesis (which applies a scenario's fault schedule and heals it, recording each fault
//! in the run's history) will join it here.

#![warn(missing_docs)]

pub mod scenario;
pub mod topology;
pub mod toxiproxy;
