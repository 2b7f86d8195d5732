//! faultline's engine: the infrastructure a run stands on, the run's roles and its reports.
//! It knows no particular system: a system is a description ([`system`]) and, for what data
//! cannot say, an [`extension`] (named checkers, a workload in Rust).
//!
//! - [`infra`] starts real Postgres, Apache Kafka and Toxiproxy (containers on a network of the
//!   run's own, or external servers), with each client's links running through Toxiproxy.
//! - [`system`] reads a system description (`faultline.toml`): shared servers, services, how
//!   to start them, and so the links faults can target.
//! - [`stack`] runs a described system on it: a process per service, every link through
//!   Toxiproxy, processes that can be killed, paused and restarted; each link between two
//!   services also through faultline's own [`intercept`] proxy, for request-level faults.
//! - [`contracts`] verifies pact files against a running system
//!   (`faultline contracts verify`).
//! - [`broker_verification`] verifies the pacts a contract broker (crate `faultline-broker`)
//!   holds against a running system and publishes the results back.
//! - [`bench`](mod@bench) measures how long that takes (`faultline bench infra`).
//! - A chaos run ([`runner`]) drives the stack with a [`workload`] while a [`nemesis`] injects a
//!   scenario's faults, records both in a [`history`], and hands it to the [`checkers`].
//! - Each run's [`report`]: `report.json` (the source of truth, with a JSON Schema),
//!   `report.html`, `junit.xml`, `summary.md`, and the reports folder's `index.html`.
//!
//! Faults themselves live in the `faultline-chaos` crate.
//!
//! ## Layers
//!
//! Each top-level module belongs to one layer and imports only from its own layer and those
//! above it in this table; inside a layer, imports go one way too (no cycle). Types two layers
//! share live in the lower one. `tests/layers.rs` reads this table and fails on an import
//! that breaks it.
//!
//! | layer | modules | what it owns |
//! |---|---|---|
//! | 1. description | [`history`], [`system`] | what a system and a run are, as data: the description, its placeholders, the history's events |
//! | 2. infrastructure | [`intercept`], [`infra`], [`stack`] | containers, proxies and processes: a described system, running |
//! | 3. run roles | [`checkers`], [`workload`], [`nemesis`], [`extension`] | what acts during a run and judges it; what a system adds in Rust |
//! | 4. reports | [`report`] | the report model and its renderings |
//! | 5. runner | [`runner`] | one scenario, start to finish |
//! | 6. tools | [`explore`], [`contracts`], [`broker_verification`], [`bench`](mod@bench), `fixtures` | what the commands do with runs and stacks; test fixtures |
//!
//! A run needs a system's description ([`system::System`]) and the checkers and workload of
//! the extension it names ([`extension::Registry::linked`]): the description is data at the
//! bottom, the registry holds code that reads a running stack, so the two travel side by side.

pub mod bench;
pub mod broker_verification;
pub mod checkers;
pub mod contracts;
pub mod explore;
pub mod extension;
#[doc(hidden)]
pub mod fixtures;
pub mod history;
pub mod infra;
pub mod intercept;
pub mod nemesis;
pub mod report;
pub mod runner;
pub mod stack;
pub mod system;
pub mod workload;
