//! Circuit breakers read from a Prometheus exposition (the text format every Prometheus
//! client library serves): which series of a metric belong to which breaker, and in which
//! state it is.
//!
//! ```
//! use faultline_harness::checkers::circuits::metrics::breakers_in;
//! use faultline_harness::system::CircuitMetric;
//! let resilience4j = CircuitMetric {
//!     metric: "resilience4j_circuitbreaker_state".into(),
//!     dependency_label: "name".into(),
//!     state_label: Some("state".into()),
//!     states: vec![],
//!     rejected: None,
//!     every: std::time::Duration::from_millis(250),
//! };
//! let text = "resilience4j_circuitbreaker_state{name=\"payment\",state=\"closed\",} 0.0\n\
//!             resilience4j_circuitbreaker_state{name=\"payment\",state=\"half_open\",} 1.0\n";
//! assert_eq!(breakers_in(text, &resilience4j)["payment"].0, "HALF_OPEN");
//! ```

use std::collections::BTreeMap;

use crate::system::{normal_state, CircuitMetric};

/// One sample of a metric: its labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The samples of `metric` in an exposition. Comments, other metrics and lines that do not
/// parse are skipped; a timestamp after the value is ignored.
pub fn samples(text: &str, metric: &str) -> Vec<Sample> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(metric)?;
            let (labels, rest) = match rest.strip_prefix('{') {
                Some(inner) => parse_labels(inner)?,
                None if rest.starts_with([' ', '\t']) => (BTreeMap::new(), rest),
                None => return None, // another metric whose name starts with this one
            };
            let value = rest.split_whitespace().next()?;
            let value = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                other => other.parse().ok()?,
            };
            Some(Sample { labels, value })
        })
        .collect()
}

/// `name="value",…}` (a trailing comma allowed) and what follows the `}`.
fn parse_labels(mut text: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    loop {
        text = text.trim_start_matches([' ', ',']);
        if let Some(rest) = text.strip_prefix('}') {
            return Some((labels, rest));
        }
        let (name, rest) = text.split_once('=')?;
        let mut chars = rest.trim_start().strip_prefix('"')?.char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(name.trim().to_string(), value);
        text = &rest.trim_start()[1 + end + 1..];
    }
}

/// Each breaker the exposition shows, by dependency: its state, and the calls it refused when
/// the description names a counter of those.
pub fn breakers_in(text: &str, source: &CircuitMetric) -> BTreeMap<String, (String, Option<u64>)> {
    let mut breakers: BTreeMap<String, (String, Option<u64>)> = BTreeMap::new();
    for sample in samples(text, &source.metric) {
        let Some(dependency) = sample.labels.get(&source.dependency_label) else {
            continue;
        };
        let state = match &source.state_label {
            // One series per state: the current one is 1.
            Some(label) if sample.value >= 0.5 => match sample.labels.get(label) {
                Some(state) => normal_state(state),
                None => continue,
            },
            Some(_) => continue,
            None => {
                let index = sample.value.round();
                match source.states.get(index as usize) {
                    Some(state) if index >= 0.0 => state.clone(),
                    _ => format!("STATE_{}", sample.value),
                }
            }
        };
        breakers.insert(dependency.clone(), (state, None));
    }
    if let Some(counter) = &source.rejected {
        for sample in samples(text, counter) {
            let Some(dependency) = sample.labels.get(&source.dependency_label) else {
                continue;
            };
            if let Some(breaker) = breakers.get_mut(dependency) {
                let refused = breaker.1.unwrap_or(0) + sample.value.max(0.0) as u64;
                breaker.1 = Some(refused);
            }
        }
    }
    breakers
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn gauge() -> CircuitMetric {
        CircuitMetric {
            metric: "faultline_circuit_state".into(),
            dependency_label: "dependency".into(),
            state_label: None,
            states: ["CLOSED", "OPEN", "HALF_OPEN"].map(String::from).to_vec(),
            rejected: Some("faultline_circuit_rejected_total".into()),
            every: Duration::from_millis(250),
        }
    }

    #[test]
    fn an_exposition_parses_into_samples_with_labels() {
        let text = "# HELP faultline_circuit_state state\n\
                    # TYPE faultline_circuit_state gauge\n\
                    faultline_circuit_state{dependency=\"payment\"} 1\n\
                    faultline_circuit_state{dependency=\"in\\\"ventory\",zone=\"a\\\\b\"} 0 1700000000000\n\
                    faultline_circuit_state_other{dependency=\"x\"} 7\n\
                    faultline_circuit_state 2\n\
                    garbage {{\n";
        let found = samples(text, "faultline_circuit_state");
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(found[0].labels["dependency"], "payment");
        assert_eq!(found[0].value, 1.0);
        assert_eq!(found[1].labels["dependency"], "in\"ventory");
        assert_eq!(found[1].labels["zone"], "a\\b");
        assert!(found[2].labels.is_empty());
    }

    #[test]
    fn a_gauge_valued_by_state_and_a_refusal_counter_give_each_breaker() {
        let text = "faultline_circuit_state{dependency=\"payment\"} 1\n\
                    faultline_circuit_state{dependency=\"inventory\"} 0\n\
                    faultline_circuit_state{dependency=\"mail\"} 9\n\
                    faultline_circuit_rejected_total{dependency=\"payment\"} 42\n";
        let breakers = breakers_in(text, &gauge());
        assert_eq!(breakers["payment"], ("OPEN".to_string(), Some(42)));
        assert_eq!(breakers["inventory"], ("CLOSED".to_string(), None));
        assert_eq!(breakers["mail"].0, "STATE_9");
    }

    #[test]
    fn one_series_per_state_takes_the_one_that_is_set() {
        let source = CircuitMetric {
            metric: "resilience4j_circuitbreaker_state".into(),
            dependency_label: "name".into(),
            state_label: Some("state".into()),
            states: Vec::new(),
            rejected: None,
            every: Duration::from_millis(250),
        };
        let text = "resilience4j_circuitbreaker_state{name=\"payment\",state=\"closed\",} 0.0\n\
                    resilience4j_circuitbreaker_state{name=\"payment\",state=\"open\",} 1.0\n\
                    resilience4j_circuitbreaker_state{name=\"stock\",state=\"half-open\",} 1.0\n";
        let breakers = breakers_in(text, &source);
        assert_eq!(breakers["payment"].0, "OPEN");
        assert_eq!(breakers["stock"].0, "HALF_OPEN");
    }
}
