//! What changed between two versions of a pact, and what each change asks of the provider.
//!
//! Interactions are paired by description. A **removed** interaction asks nothing new. An
//! **added** one is a requirement the provider was never verified for. A **changed** one is
//! judged with the matching engine, so a difference that matters comes with a concrete
//! counterexample:
//! - *response side*: the old interaction's example response — what the provider was
//!   verified to give — matched against the new expectations; each mismatch is a way the
//!   provider's verified behaviour no longer satisfies the consumer;
//! - *request side*: the new example request matched against the old request; each mismatch
//!   is something the consumer now sends that the provider was never verified to accept.
//!
//! A change with neither (a relaxed rule, a new provider-state parameter) is still listed,
//! as it changes what verification does. [`PactDiff::needs_verification`] is true when the
//! new pact asks anything the old one did not; `faultline contracts diff OLD.json NEW.json`
//! then exits 1.
//!
//! ```
//! use faultline_contracts::compat::pact::diff_pacts;
//! use faultline_contracts::Pact;
//!
//! let pact = |status: &str| Pact::from_json_str(&format!(r#"{{
//!   "consumer": {{"name": "gateway"}}, "provider": {{"name": "order"}},
//!   "interactions": [{{"type": "Synchronous/HTTP", "description": "get an order",
//!     "request": {{"method": "GET", "path": "/orders/1"}},
//!     "response": {{"status": 200, "body": {{"content": {{"status": "{status}"}},
//!       "contentType": "application/json", "encoded": false}}}}}}],
//!   "metadata": {{"pactSpecification": {{"version": "4.0"}}}}}}"#)).unwrap();
//! let diff = diff_pacts(&pact("PENDING"), &pact("PAID"));
//! assert!(diff.needs_verification());
//! let change = &diff.changes[0];
//! assert_eq!(change.counterexamples[0].mismatches[0].path, "$.status");
//! ```

use std::fmt;

use serde::Serialize;
use serde_json::{json, Value};

use crate::matching::{example_request, example_response, match_request, match_response, Mismatch};
use crate::model::{HttpInteraction, Interaction};
use crate::Pact;

/// How an interaction changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Changed => "changed",
        })
    }
}

/// A concrete exchange that one version accepts and the other rejects.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counterexample {
    /// `response` (the old verified answer, rejected by the new pact) or `request` (the new
    /// request, not covered by the old pact).
    pub side: &'static str,
    /// The exchange: status/headers/body, or method/path/body.
    pub example: Value,
    /// Why the other version rejects it.
    #[serde(serialize_with = "mismatch_texts")]
    pub mismatches: Vec<Mismatch>,
}

fn mismatch_texts<S: serde::Serializer>(m: &[Mismatch], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(m.iter().map(|m| m.to_string()))
}

/// One interaction's change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PactChange {
    pub interaction: String,
    pub kind: ChangeKind,
    /// The parts that differ (`request.body`, `response.status`, `providerStates`, ...).
    pub parts: Vec<String>,
    pub counterexamples: Vec<Counterexample>,
}

impl PactChange {
    /// True when the new pact asks something of the provider the old one did not.
    pub fn needs_verification(&self) -> bool {
        self.kind != ChangeKind::Removed
    }
}

/// The changes between two versions of a pact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PactDiff {
    pub consumer: String,
    pub provider: String,
    /// Consumer or provider names differ between the versions.
    pub renamed: Option<String>,
    pub changes: Vec<PactChange>,
}

impl PactDiff {
    /// True when the provider must verify the new pact before it can be relied on.
    pub fn needs_verification(&self) -> bool {
        self.renamed.is_some() || self.changes.iter().any(PactChange::needs_verification)
    }
}

fn http_counterexamples(old: &HttpInteraction, new: &HttpInteraction) -> Vec<Counterexample> {
    let mut out = Vec::new();
    let verified = example_response(&old.response);
    let rejected = match_response(&new.response, &verified);
    if !rejected.is_empty() {
        out.push(Counterexample {
            side: "response",
            example: json!({
                "status": old.response.status,
                "body": old.response.body.as_ref().map(|b| b.content.clone()),
            }),
            mismatches: rejected,
        });
    }
    let sent = example_request(&new.request);
    let uncovered = match_request(&old.request, &sent);
    if !uncovered.is_empty() {
        out.push(Counterexample {
            side: "request",
            example: json!({
                "method": new.request.method,
                "path": new.request.path,
                "body": new.request.body.as_ref().map(|b| b.content.clone()),
            }),
            mismatches: uncovered,
        });
    }
    out
}

/// The top-level and second-level keys whose JSON differs.
fn differing_parts(old: &Value, new: &Value) -> Vec<String> {
    let mut parts = Vec::new();
    let empty = serde_json::Map::new();
    let (o, n) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let (a, b) = (o.get(key), n.get(key));
        if a == b {
            continue;
        }
        match (a, b) {
            (Some(Value::Object(x)), Some(Value::Object(y)))
                if key == "request" || key == "response" =>
            {
                let mut sub: Vec<&String> = x.keys().chain(y.keys()).collect();
                sub.sort();
                sub.dedup();
                parts.extend(
                    sub.into_iter()
                        .filter(|s| x.get(*s) != y.get(*s))
                        .map(|s| format!("{key}.{s}")),
                );
            }
            _ => parts.push(key.clone()),
        }
    }
    parts
}

/// Compares two versions of a pact; see the module docs.
pub fn diff_pacts(old: &Pact, new: &Pact) -> PactDiff {
    let renamed = (old.consumer != new.consumer || old.provider != new.provider).then(|| {
        format!(
            "{} -> {} became {} -> {}",
            old.consumer.name, old.provider.name, new.consumer.name, new.provider.name
        )
    });
    let old_json = old.to_json();
    let new_json = new.to_json();
    fn find<'p>(
        pact: &'p Pact,
        doc: &Value,
        description: &str,
    ) -> Option<(&'p Interaction, Value)> {
        pact.interactions
            .iter()
            .position(|i| i.description() == description)
            .map(|at| (&pact.interactions[at], doc["interactions"][at].clone()))
    }
    let mut changes = Vec::new();
    for interaction in &new.interactions {
        let description = interaction.description();
        let (_, new_doc) = find(new, &new_json, description).expect("present");
        match find(old, &old_json, description) {
            None => changes.push(PactChange {
                interaction: description.into(),
                kind: ChangeKind::Added,
                parts: vec!["the whole interaction".into()],
                counterexamples: Vec::new(),
            }),
            Some((before, old_doc)) if old_doc != new_doc => {
                let counterexamples = match (before, interaction) {
                    (Interaction::Http(a), Interaction::Http(b)) => http_counterexamples(a, b),
                    (Interaction::Message(a), Interaction::Message(b)) => {
                        let rejected =
                            crate::matching::match_message(b, &a.contents.content, &a.metadata);
                        if rejected.is_empty() {
                            Vec::new()
                        } else {
                            vec![Counterexample {
                                side: "message",
                                example: json!({"contents": a.contents.content, "metadata": a.metadata}),
                                mismatches: rejected,
                            }]
                        }
                    }
                    _ => Vec::new(),
                };
                changes.push(PactChange {
                    interaction: description.into(),
                    kind: ChangeKind::Changed,
                    parts: differing_parts(&old_doc, &new_doc),
                    counterexamples,
                });
            }
            Some(_) => {}
        }
    }
    for interaction in &old.interactions {
        if find(new, &new_json, interaction.description()).is_none() {
            changes.push(PactChange {
                interaction: interaction.description().into(),
                kind: ChangeKind::Removed,
                parts: vec!["the whole interaction".into()],
                counterexamples: Vec::new(),
            });
        }
    }
    PactDiff {
        consumer: new.consumer.name.clone(),
        provider: new.provider.name.clone(),
        renamed,
        changes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::matchers::{integer, like};
    use crate::consumer::PactBuilder;

    fn pact(response: Value, request: Value, extra: bool) -> Pact {
        let mut b = PactBuilder::new("order", "payment");
        b.interaction("a charge", |i| {
            i.post("/charges")
                .json_body(request)
                .will_respond_with(201)
                .response_json(response)
        });
        if extra {
            b.interaction("a refund", |i| i.post("/refunds").will_respond_with(201));
        }
        b.pact()
    }

    #[test]
    fn identical_pacts_have_no_changes() {
        let a = pact(
            json!({"status": "CHARGED"}),
            json!({"n": integer(1)}),
            false,
        );
        let diff = diff_pacts(&a, &a.clone());
        assert!(diff.changes.is_empty() && !diff.needs_verification());
    }

    #[test]
    fn a_renamed_response_field_is_shown_with_the_old_verified_answer() {
        let old = pact(
            json!({"status": "CHARGED"}),
            json!({"n": integer(1)}),
            false,
        );
        let new = pact(json!({"state": "CHARGED"}), json!({"n": integer(1)}), false);
        let diff = diff_pacts(&old, &new);
        assert!(diff.needs_verification());
        let change = &diff.changes[0];
        assert_eq!(change.kind, ChangeKind::Changed);
        assert_eq!(change.parts, vec!["response.body"]);
        let c = &change.counterexamples[0];
        assert_eq!(c.side, "response");
        assert_eq!(c.example["body"], json!({"status": "CHARGED"}));
        assert_eq!(c.mismatches[0].path, "$.state");
    }

    #[test]
    fn a_new_request_field_is_shown_as_a_request_the_provider_never_saw() {
        let old = pact(json!({}), json!({"n": integer(1)}), false);
        let new = pact(
            json!({}),
            json!({"n": integer(1), "card": like(json!("4242"))}),
            false,
        );
        let change = &diff_pacts(&old, &new).changes[0];
        let c = &change.counterexamples[0];
        assert_eq!(c.side, "request");
        assert_eq!(c.mismatches[0].path, "$.card");
    }

    #[test]
    fn added_and_removed_interactions() {
        let one = pact(json!({}), json!({}), false);
        let two = pact(json!({}), json!({}), true);
        let added = diff_pacts(&one, &two);
        assert_eq!(added.changes[0].kind, ChangeKind::Added);
        assert!(added.needs_verification());
        let removed = diff_pacts(&two, &one);
        assert_eq!(removed.changes[0].kind, ChangeKind::Removed);
        assert!(!removed.needs_verification());
    }

    #[test]
    fn a_relaxed_rule_is_listed_without_a_counterexample() {
        let old = pact(json!({"n": integer(1)}), json!({}), false);
        let new = pact(json!({"n": like(json!(1))}), json!({}), false);
        let change = &diff_pacts(&old, &new).changes[0];
        assert_eq!(change.parts, vec!["response.matchingRules"]);
        assert!(change.counterexamples.is_empty());
    }
}
