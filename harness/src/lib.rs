//! faultline's harness: the infrastructure a run stands on, and the `faultline` command.
//!
//! - [`infra`] starts real Postgres, Apache Kafka and Toxiproxy (containers on a network of the
//!   run's own, or external servers), with each client's links running through Toxiproxy.
//! - [`stack`] runs the reference system on it: five service processes, every link through
//!   Toxiproxy, processes that can be killed, paused and restarted.
//! - [`bench`] measures how long that takes (`faultline bench infra`).
//!
//! Later parts of a chaos run (stack runner, workload, history, checkers, reports) join here;
//! faults themselves live in the `faultline-chaos` crate.

pub mod bench;
pub mod infra;
pub mod stack;
