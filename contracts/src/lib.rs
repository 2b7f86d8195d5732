//! # faultline-contracts
//!
//! Consumer-driven contracts for faultline. A consumer states what it needs from a provider
//! as a [Pact Specification V4](https://github.com/pact-foundation/pact-specification/tree/version-4)
//! file; the provider proves it delivers before either is released. The files are the ones
//! the wider Pact ecosystem reads and writes.
//!
//! ## What is here now
//!
//! - [`model`]: the V4 file — HTTP (`Synchronous/HTTP`) and message (`Asynchronous/Messages`)
//!   interactions, provider states with parameters, matching rules, generators (the
//!   `ProviderState` generator typed, the others kept as data). Reading is strict: a file that
//!   is not V4, or uses an interaction type, matcher, rule category, plugin or field faultline
//!   does not understand, is a [`PactError`] naming the interaction and the JSON path. Writing
//!   is deterministic (sorted keys) so pact files snapshot and diff cleanly.
//! - [`matching`]: the Pact matching rules — equality, type with min/max, regex, integer,
//!   decimal, number, boolean, null, include, date/time/datetime (Java-style patterns or
//!   ISO-8601), notEmpty, semver, values, eachKey, eachValue, arrayContains, statusCode —
//!   combined with AND/OR and selected by Pact's path weighting ([`path`]). Every difference
//!   is a [`Mismatch`] with the JSON path, the expected and actual values, and the rule.
//!
//! ```
//! use faultline_contracts::model::{Pact, Interaction};
//! use faultline_contracts::matching::{match_response, ActualResponse};
//!
//! let pact = Pact::from_json_str(r#"{
//!   "consumer": {"name": "gateway"}, "provider": {"name": "order"},
//!   "interactions": [{
//!     "type": "Synchronous/HTTP", "description": "get order 1",
//!     "request": {"method": "GET", "path": "/orders/1"},
//!     "response": {
//!       "status": 200,
//!       "body": {"content": {"id": 1, "state": "NEW"}, "contentType": "application/json", "encoded": false},
//!       "matchingRules": {"body": {"$.state": {"combine": "AND", "matchers": [{"match": "regex", "regex": "NEW|PAID"}]}}}
//!     }
//!   }],
//!   "metadata": {"pactSpecification": {"version": "4.0"}}
//! }"#).unwrap();
//! let Interaction::Http(http) = &pact.interactions[0] else { unreachable!() };
//! let actual = ActualResponse { status: 200, headers: vec![], body: br#"{"id": 1, "state": "LOST"}"#.to_vec() };
//! let mismatches = match_response(&http.response, &actual);
//! assert_eq!(mismatches.len(), 1);
//! assert_eq!(mismatches[0].path, "$.state");
//! ```
//!
//! - [`compat`]: backward / forward / full / transitive compatibility between two versions of
//!   a JSON Schema; every break comes with a counterexample payload, checked by the validator
//!   (`faultline contracts diff`).
//!
//! - [`consumer`]: the consumer side — [`consumer::PactBuilder`], example values with matchers
//!   and provider-state generators, a `wiremock` mock provider that answers by the pact's
//!   rules and fails on anything else, message examples handed to the consumer's handler, and
//!   the pact file written deterministically.
//! - [`verify`]: the provider side — provider states through a state-change URL,
//!   `ProviderState` generators filled in, the request replayed against the real provider, a
//!   message read from where the provider published it ([`verify::MessageSource`]; the harness
//!   reads Kafka), results per interaction as JSON and JUnit.
//! - [`files`]: reading pact files with errors that name the file.
//!
//! Inside the crate, imports point one way (`tests/layers.rs` checks there is no cycle):
//! [`error`], [`path`] and [`patterns`] (compiled regexes and date formats) at the bottom; the
//! [`model`] on them; [`matching`] on the model; reading a pact (the private `read`: parsing
//! into the model, then checking each interaction's examples against its own rules with the
//! matchers) on both; [`consumer`], [`verify`], [`compat`] and [`files`] on top. The reference system's event
//! schemas (`contracts/schemas/`) are compiled into its own crate (`faultline_reference::catalogue`),
//! not into this library.
//!
//! Not supported: XML, multipart and plugin content, the `contentType` (binary sniffing)
//! matcher, `Synchronous/Messages` interactions; generators other than `ProviderState` are
//! read and written but not applied.

pub mod compat;
pub mod consumer;
pub mod error;
pub mod files;
pub mod matching;
pub mod model;
pub mod path;
pub mod patterns;
mod read;
pub mod verify;

pub use error::PactError;
pub use matching::{
    match_json, match_message, match_request, match_response, ActualRequest, ActualResponse,
    Mismatch, Part, UnexpectedKeys,
};
pub use model::{Interaction, Pact};

#[cfg(test)]
mod properties;
