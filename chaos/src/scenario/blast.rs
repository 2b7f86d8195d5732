//! The blast radius of a fault: the operations of the workload that do not depend on what
//! it faults must not suffer while it is on (the verdict `blast-radius`).
//!
//! An operation's *footprint* is the set of call sites its requests cause on the links
//! between services (`order->payment POST /payments/charges`), learnt without instrumenting
//! anything: before the load, each operation is sent alone, a few times, and the request
//! proxies record what followed. A fault *reaches* an operation when it acts on a call site
//! of its footprint, or on a service the operation is sent to or calls, or on that service's
//! database or broker link. Each operation the faults of a moment do not reach must keep,
//! while they are on, its fault-free success rate and stay within a latency bound derived
//! from its fault-free answers in the same run: `max(latency_factor × p99, p99 +
//! latency_margin)`.
//!
//! ```toml
//! [expectations.blast_radius]
//! latency_factor = 4          # default 4
//! latency_margin = "1s"       # default 1s: a busy 2-core machine's jitter is not a finding
//! success_slack = 0.1         # the success rate may fall this much below the fault-free one
//! # What discovery learnt (chaos explore writes it into its experiments and reproducers);
//! # measured at the start of the run when absent.
//! [expectations.blast_radius.footprints]
//! "fees" = []
//! "transfer" = ["teller->ledger POST /transfers"]
//! # The fault-free figures of the same load (explore writes its discovery's); otherwise
//! # the run's own answers that no fault touched.
//! [expectations.blast_radius.baseline]
//! "fees" = { answers = 5, ok = 5, p99 = "14ms" }
//! ```
//!
//! `blast_radius = false` in `[expectations]` leaves the verdict out.

use std::collections::BTreeMap;
use std::time::Duration;

use super::fields::Fields;
use super::ScenarioError;

/// Operation label (`name`, or `name (kind)`) → the call sites (`link METHOD route`) its
/// requests caused when sent alone.
pub type Footprints = BTreeMap<String, Vec<String>>;

/// An operation's fault-free figures: what its answers in a run without faults were.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    /// Answers (completed requests) counted.
    pub answers: u32,
    /// Of which ok.
    pub ok: u32,
    /// The p99 of the ok ones' latencies (nearest rank).
    pub p99: Duration,
}

/// Operation label → its fault-free figures.
pub type Baselines = BTreeMap<String, Baseline>;

/// How the blast radius is judged.
#[derive(Debug, Clone, PartialEq)]
pub struct BlastRadius {
    /// Whether the verdict is given at all (`blast_radius = false` switches it off).
    pub judged: bool,
    /// The latency bound is at least this many times the fault-free p99.
    pub latency_factor: f64,
    /// … and at least the fault-free p99 plus this.
    pub latency_margin: Duration,
    /// How far the success rate may fall below the fault-free one.
    pub success_slack: f64,
    /// The footprints, when known before the run; measured at its start otherwise.
    pub footprints: Option<Footprints>,
    /// The operations' fault-free figures, when known before the run (a fault-free run of
    /// the same load: exploration's discovery); otherwise the run's own answers that no fault
    /// touched.
    pub baseline: Option<Baselines>,
    /// Measure the footprints even in a run without faults (exploration's discovery does, to
    /// hand them to its experiments). Not a field of the file.
    pub measure: bool,
}

impl Default for BlastRadius {
    fn default() -> Self {
        Self {
            judged: true,
            latency_factor: 4.0,
            latency_margin: Duration::from_secs(1),
            success_slack: 0.1,
            footprints: None,
            baseline: None,
            measure: false,
        }
    }
}

/// The label an operation goes by in footprints and verdicts: `name`, or `name (kind)`.
pub fn label(name: &str, kind: Option<&str>) -> String {
    match kind {
        Some(kind) => format!("{name} ({kind})"),
        None => name.to_string(),
    }
}

/// Reads `blast_radius` of `[expectations]`: `false`, or a table.
pub(super) fn read(fields: &mut Fields<'_>) -> Result<BlastRadius, ScenarioError> {
    let value = fields.value("blast_radius");
    let table = match value {
        None => return Ok(BlastRadius::default()),
        Some(toml::Value::Boolean(judged)) => {
            return Ok(BlastRadius {
                judged,
                ..BlastRadius::default()
            })
        }
        Some(toml::Value::Table(table)) => table,
        Some(other) => {
            return Err(fields.error(
                "blast_radius",
                format!("expected false or a table, found {}", other.type_str()),
            ))
        }
    };
    let mut table = Fields::new(fields.file(), fields.path_of("blast_radius"), table);
    let defaults = BlastRadius::default();
    let latency_factor = table.number_in("latency_factor", 1.0..=1000.0)?.unwrap_or(defaults.latency_factor);
    let latency_margin = table.duration("latency_margin")?.unwrap_or(defaults.latency_margin);
    if latency_margin > super::MAX_DURATION {
        return Err(table.error("latency_margin", "expected at most 1h"));
    }
    let success_slack = table.number_in("success_slack", 0.0..=1.0)?.unwrap_or(defaults.success_slack);
    let footprints = match table.table("footprints")? {
        None => None,
        Some(sites) => {
            let mut footprints = Footprints::new();
            let entries: Vec<(String, toml::Value)> =
                sites.raw().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            for (operation, value) in entries {
                let toml::Value::Array(items) = value else {
                    return Err(sites.error(&operation, "expected an array of call sites such as \"a->b POST /path\""));
                };
                let mut calls = Vec::new();
                for item in items {
                    match item.as_str() {
                        Some(site) if site.split_whitespace().count() == 3 && site.contains("->") => {
                            calls.push(site.to_string())
                        }
                        _ => {
                            return Err(sites.error(
                                &operation,
                                format!("expected call sites such as \"a->b POST /path\", found {item}"),
                            ))
                        }
                    }
                }
                footprints.insert(operation, calls);
            }
            Some(footprints)
        }
    };
    let baseline = match table.table("baseline")? {
        None => None,
        Some(mut operations) => {
            let mut baselines = Baselines::new();
            for (operation, mut figures) in operations.named_tables()? {
                let answers = figures.integer_in("answers", 1..=1_000_000)?
                    .ok_or_else(|| figures.error("answers", "required: how many fault-free answers"))?;
                let ok = figures.integer_in("ok", 0..=1_000_000)?
                    .ok_or_else(|| figures.error("ok", "required: how many of them were ok"))?;
                if ok > answers {
                    return Err(figures.error("ok", format!("expected at most `answers` ({answers}), found {ok}")));
                }
                let p99 = figures.required_duration("p99")?;
                figures.finish()?;
                baselines.insert(operation, Baseline { answers: answers as u32, ok: ok as u32, p99 });
            }
            Some(baselines)
        }
    };
    table.finish()?;
    Ok(BlastRadius {
        judged: true,
        latency_factor,
        latency_margin,
        success_slack,
        footprints,
        baseline,
        measure: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_text(text: &str) -> Result<BlastRadius, ScenarioError> {
        let table: toml::Table = toml::from_str(text).unwrap();
        let mut fields = Fields::new("s.toml", "expectations", table);
        let blast = read(&mut fields)?;
        fields.finish()?;
        Ok(blast)
    }

    #[test]
    fn judged_by_default_off_with_false_and_tuned_or_given_footprints_with_a_table() {
        assert_eq!(read_text("").unwrap(), BlastRadius::default());
        assert!(!read_text("blast_radius = false").unwrap().judged);
        let tuned = read_text(
            "[blast_radius]\nlatency_factor = 2\nlatency_margin = \"250ms\"\n\
             [blast_radius.footprints]\nfees = []\n\"transfer (big)\" = [\"teller->ledger POST /transfers\"]",
        )
        .unwrap();
        assert_eq!((tuned.latency_factor, tuned.latency_margin), (2.0, Duration::from_millis(250)));
        let footprints = tuned.footprints.clone().unwrap();
        assert_eq!(footprints["fees"], Vec::<String>::new());
        assert_eq!(footprints["transfer (big)"], ["teller->ledger POST /transfers"]);
    }

    #[test]
    fn a_baseline_reads_as_figures_per_operation() {
        let given = read_text("[blast_radius.baseline]\nfees = { answers = 5, ok = 4, p99 = \"14ms\" }").unwrap();
        assert_eq!(
            given.baseline.unwrap()["fees"],
            Baseline { answers: 5, ok: 4, p99: Duration::from_millis(14) }
        );
        let error = read_text("[blast_radius.baseline]\nfees = { answers = 5, ok = 6, p99 = \"14ms\" }").unwrap_err();
        assert_eq!(error.field, "expectations.blast_radius.baseline.fees.ok", "{error}");
    }

    #[test]
    fn bad_settings_name_the_field() {
        for (text, field) in [
            ("blast_radius = 3", "expectations.blast_radius"),
            ("[blast_radius]\nlatency_factor = 0.5", "expectations.blast_radius.latency_factor"),
            ("[blast_radius.footprints]\nfees = \"x\"", "expectations.blast_radius.footprints.fees"),
            ("[blast_radius.footprints]\nfees = [\"/fees\"]", "expectations.blast_radius.footprints.fees"),
            ("[blast_radius]\nfactor = 2", "expectations.blast_radius.factor"),
        ] {
            let error = read_text(text).unwrap_err();
            assert_eq!(error.field, field, "{text}: {error}");
        }
    }
}
