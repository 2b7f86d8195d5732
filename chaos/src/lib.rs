//! The fault model of faultline: what can go wrong between services, and the means to make
//! it go wrong on purpose.
//!
//! A chaos run injects faults into the network between the services under test while the
//! harness drives traffic and the checkers judge invariants. This crate is where faults are
//! described and injected; it knows nothing about the services, the contracts or the report.
//!
//! Today it holds the injector only:
//!
//! - [`toxiproxy`]: an async client for Toxiproxy's HTTP API, which partitions, delays,
//!   throttles and cuts TCP connections between services.
//!
//! The nemesis (which faults to inject, when, and how they are healed, recorded in the
//! run's history) and the scenario format that describes a chaos run will join it here.

#![warn(missing_docs)]

pub mod toxiproxy;
