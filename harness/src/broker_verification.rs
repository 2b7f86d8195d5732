//! Provider verification through the broker: fetch the pacts for verification of a provider
//! (selectors, pending status for its branch), verify them against the reference system with
//! [`crate::contracts::verify_pacts`], and publish the results back. `faultline contracts
//! verify --broker-url` is [`verify_from_broker`] plus the output files.
//!
//! Layer 6 (tools) of the harness ([layers](crate#layers)): may import any layer below it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use faultline_contracts::verify::{ProviderTarget, Report};
use faultline_contracts::Pact;

use faultline_broker_client::{BrokerClient, ClientError, PactToVerify, Selector};
use crate::contracts::verify_pacts;
use crate::stack::Stack;

/// What `verify_from_broker` did: the pacts the broker gave and the verdicts.
#[derive(Debug)]
pub struct BrokerVerification {
    pub pacts: Vec<PactToVerify>,
    pub report: Report,
    /// Whether the results were published (and how many pacts).
    pub published: usize,
}

/// Where a provider's pacts come from and where its results go.
#[derive(Debug, Clone)]
pub struct BrokerSource<'a> {
    pub client: &'a BrokerClient,
    pub provider: &'a str,
    /// Consumer version selectors; empty: the main branch and whatever is deployed or released.
    pub selectors: Vec<Selector>,
    pub provider_version: &'a str,
    pub provider_branch: Option<&'a str>,
    /// Publish the results back to the broker.
    pub publish: bool,
    pub build_url: Option<&'a str>,
}

/// The default selectors: each consumer's main branch, and every version deployed or released.
pub fn default_selectors() -> Vec<Selector> {
    use Selector;
    vec![
        Selector {
            main_branch: Some(true),
            ..Selector::default()
        },
        Selector {
            deployed_or_released: Some(true),
            ..Selector::default()
        },
    ]
}

/// Fetches the pacts for verification of `source.provider` (pending status on, for the
/// provider's branch), verifies them against `stack` (or the override target), and publishes
/// the results when asked. A pending pact's interactions are pending: their failures are
/// reported and published but do not fail the report.
pub async fn verify_from_broker(
    source: &BrokerSource<'_>,
    stack: Option<&Stack>,
    overrides: &BTreeMap<String, ProviderTarget>,
) -> Result<BrokerVerification, ClientError> {
    let selectors = if source.selectors.is_empty() {
        default_selectors()
    } else {
        source.selectors.clone()
    };
    let pacts = source
        .client
        .pacts_for_verification(source.provider, &selectors, true, source.provider_branch)
        .await?;
    let files: Vec<(PathBuf, Pact)> = pacts
        .iter()
        .map(|p| (PathBuf::from(&p.url), p.pact.clone()))
        .collect();
    let report = verify_pacts(stack, &files, overrides).await;
    let mut published = 0;
    if source.publish {
        for (pact, result) in pacts.iter().zip(&report.pacts) {
            source
                .client
                .publish_verification(
                    pact,
                    result,
                    source.provider_version,
                    source.provider_branch,
                    source.build_url,
                )
                .await?;
            published += 1;
        }
    }
    Ok(BrokerVerification {
        pacts,
        report,
        published,
    })
}
