//! `faultline contracts verify | diff`, and the broker's client commands
//! (`publish | can-i-deploy | record-deployment`, in [`crate::broker`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context};
use faultline_contracts::compat::{self, Schema};
use faultline_contracts::verify::{ProviderTarget, Report};
use faultline_harness::broker_verification::{verify_from_broker, BrokerSource};
use faultline_broker::BrokerClient;
use faultline_harness::contracts::{self as harness_contracts, KafkaMessages};
use faultline_harness::stack::{Stack, StackConfig};

use crate::error::{CliError, Then, NOTHING_STARTED};
use crate::flags::{ContractsCommand, DiffArgs, VerifyArgs};

const NOTHING_COMPARED: &str = "nothing was compared";

pub async fn exec(command: ContractsCommand, system: Option<&Path>) -> Result<(), CliError> {
    match command {
        ContractsCommand::Verify(args) if args.broker_url.is_some() => {
            verify_from(args, system).await
        }
        ContractsCommand::Verify(args) => verify(args, system).await,
        ContractsCommand::Diff(args) => diff(args),
        ContractsCommand::Publish(args) => crate::broker::publish(args).await,
        ContractsCommand::CanIDeploy(args) => crate::broker::can_i_deploy(args).await,
        ContractsCommand::RecordDeployment(args) => crate::broker::record_deployment(args).await,
    }
}

/// `reports/contracts-<unix time>` unless `--out` says otherwise.
fn out_dir(out: Option<PathBuf>) -> PathBuf {
    out.unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from(format!("reports/contracts-{now}"))
    })
}

/// The provider at `--provider-url` (with its messages from `--kafka-bootstrap`), in place of
/// the reference system's.
fn overrides(
    provider: Option<&str>,
    provider_url: Option<&str>,
    kafka_bootstrap: Option<&str>,
) -> BTreeMap<String, ProviderTarget> {
    let mut overrides = BTreeMap::new();
    if let (Some(url), Some(provider)) = (provider_url, provider) {
        let mut target = ProviderTarget::http(provider, url);
        if let Some(bootstrap) = kafka_bootstrap {
            target = target.with_messages(Arc::new(KafkaMessages::new(bootstrap)));
        }
        overrides.insert(provider.to_string(), target);
    }
    overrides
}

/// Starts the system `--system` describes unless the provider is overridden; reads the
/// description and checks the environment it is started from first.
async fn system_stack(needed: bool, system: Option<&Path>) -> Result<Option<Stack>, CliError> {
    if !needed {
        return Ok(None);
    }
    let (system, _) = crate::system(system)?;
    faultline_harness::infra::InfraConfig::for_system(&system)
        .check_environment()
        .then(NOTHING_STARTED)?;
    eprintln!("starting {} from {}…", system.name, system.file.display());
    Ok(Some(Stack::start(&system, StackConfig::default()).await?))
}

/// Writes the results and says whether every interaction held.
fn finish(report: &Report, out: &Path) -> Result<(), CliError> {
    harness_contracts::write_report(report, out)
        .with_context(|| format!("writing the results to {}", out.display()))?;
    if report.holds() {
        Ok(())
    } else {
        Err(CliError::CheckFailed)
    }
}

/// `faultline contracts verify` of pact files.
async fn verify(args: VerifyArgs, system: Option<&Path>) -> Result<(), CliError> {
    let dir = args
        .pacts
        .clone()
        .unwrap_or_else(|| crate::shipped("contracts/pacts"));
    let mut pacts = faultline_contracts::files::read_pacts(&dir).then(NOTHING_STARTED)?;
    if let Some(provider) = &args.provider {
        pacts.retain(|(_, pact)| &pact.provider.name == provider);
        if pacts.is_empty() {
            return Err(CliError::input(anyhow!(
                "no pact in {} has provider {provider:?}",
                dir.display()
            )))
            .then(NOTHING_STARTED);
        }
    }
    let out = out_dir(args.out);
    let overrides = overrides(
        args.provider.as_deref(),
        args.provider_url.as_deref(),
        args.kafka_bootstrap.as_deref(),
    );
    let stack = system_stack(overrides.is_empty(), system).await?;
    let report = harness_contracts::verify_pacts(stack.as_ref(), &pacts, &overrides).await;
    if let Some(stack) = stack {
        stack.shutdown().await?;
    }
    print!("{}", report.to_text());
    finish(&report, &out)?;
    eprintln!(
        "wrote {0}/verification.json, {0}/verification.junit.xml and {0}/verification.html",
        out.display()
    );
    Ok(())
}

/// `faultline contracts verify --broker-url`: the broker's pacts for verification of the
/// provider, verified like files, the results published with `--publish`.
async fn verify_from(args: VerifyArgs, system: Option<&Path>) -> Result<(), CliError> {
    let mut selectors = Vec::new();
    for text in &args.consumer_version_selectors {
        let selector = serde_json::from_str(text)
            .map_err(|error| {
                CliError::input(anyhow!("--consumer-version-selectors {text}: {error}"))
            })
            .then(NOTHING_STARTED)?;
        selectors.push(selector);
    }
    let provider = args.provider.clone().unwrap_or_default();
    let provider_version = args.provider_version.clone().unwrap_or_default();
    let client = BrokerClient::new(
        args.broker_url.as_deref().unwrap_or_default(),
        args.token.clone(),
    );
    let source = BrokerSource {
        client: &client,
        provider: &provider,
        selectors,
        provider_version: &provider_version,
        provider_branch: args.provider_branch.as_deref(),
        publish: args.publish,
        build_url: args.build_url.as_deref(),
    };
    let out = out_dir(args.out.clone());
    let overrides = overrides(
        Some(&provider),
        args.provider_url.as_deref(),
        args.kafka_bootstrap.as_deref(),
    );
    let stack = system_stack(overrides.is_empty(), system).await?;
    let verification = verify_from_broker(&source, stack.as_ref(), &overrides).await;
    if let Some(stack) = stack {
        stack.shutdown().await?;
    }
    let verification = verification?;
    for pact in &verification.pacts {
        eprintln!(
            "{} -> {} ({}){}",
            pact.pact.consumer.name,
            pact.pact.provider.name,
            pact.url,
            if pact.pending { ": pending" } else { "" }
        );
        for notice in &pact.notices {
            eprintln!("  {notice}");
        }
    }
    let report = &verification.report;
    print!("{}", report.to_text());
    if args.publish {
        eprintln!(
            "published the results of {} pact(s) as {provider} {provider_version}",
            verification.published
        );
    }
    finish(report, &out)
}

/// A JSON document with `interactions` (or Pact's `metadata.pactSpecification`): a pact.
fn is_pact_file(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .is_some_and(|doc| {
            doc.get("interactions").is_some() || doc["metadata"].get("pactSpecification").is_some()
        })
}

/// `faultline contracts diff`: two schemas (with their history) or two pacts.
fn diff(args: DiffArgs) -> Result<(), CliError> {
    if is_pact_file(&args.old) || is_pact_file(&args.new) {
        if !args.history.is_empty() {
            return Err(CliError::input(anyhow!(
                "--history applies to JSON Schemas, not to pact files"
            )));
        }
        return pact_diff(&args.old, &args.new, args.json);
    }
    let schemas = schema_history(&args)?;
    let report = compat::check_transitive(&schemas, args.mode);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).context("writing the report as JSON")?
        );
    } else {
        for change in &report.breaking {
            println!(
                "BREAKING {} {}: {} ({} -> {}); counterexample: {}; rejected: {}",
                change.direction,
                change.path,
                change.change,
                change.writer,
                change.reader,
                change.counterexample,
                change.rejected_because
            );
        }
        for doubt in &report.unverified {
            println!(
                "UNVERIFIED {} {}: {} ({} -> {}); {}",
                doubt.direction,
                doubt.path,
                doubt.change,
                doubt.writer,
                doubt.reader,
                doubt.problem
            );
        }
    }
    let (mode, versions) = (args.mode, schemas.len());
    if report.is_compatible() {
        eprintln!("compatible ({mode}, {versions} versions)");
        Ok(())
    } else {
        eprintln!(
            "incompatible ({mode}, {versions} versions): {} breaking changes, {} unverified",
            report.breaking.len(),
            report.unverified.len()
        );
        Err(CliError::CheckFailed)
    }
}

/// HISTORY.. (folders' `*.json` in name order), OLD, NEW: read, each once.
fn schema_history(args: &DiffArgs) -> Result<Vec<Schema>, CliError> {
    let mut files = Vec::new();
    for entry in &args.history {
        if entry.is_dir() {
            let listed = std::fs::read_dir(entry).and_then(|dir| {
                dir.map(|item| item.map(|item| item.path()))
                    .collect::<Result<Vec<_>, _>>()
            });
            let mut found = listed
                .map_err(|error| {
                    CliError::input(anyhow!("reading the folder {}: {error}", entry.display()))
                })
                .then(NOTHING_COMPARED)?;
            found.retain(|path| path.extension().is_some_and(|ext| ext == "json"));
            found.sort();
            files.extend(found);
        } else {
            files.push(entry.clone());
        }
    }
    let same = |a: &PathBuf, b: &Path| {
        a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
    };
    files.retain(|file| !same(file, &args.old) && !same(file, &args.new));
    files.push(args.old.clone());
    files.push(args.new.clone());
    files
        .iter()
        .map(|file| {
            let name = file.display().to_string();
            let text = std::fs::read_to_string(file)
                .map_err(|error| CliError::input(anyhow!("{name}: cannot read the file: {error}")))
                .then(NOTHING_COMPARED)?;
            Schema::from_json_str(&name, &text)
                .map_err(CliError::from)
                .then(NOTHING_COMPARED)
        })
        .collect()
}

/// `faultline contracts diff OLD.json NEW.json` for pacts: exit 0 when the new pact asks
/// nothing new of the provider, 1 when it does.
fn pact_diff(old: &Path, new: &Path, json: bool) -> Result<(), CliError> {
    use faultline_contracts::compat::pact::diff_pacts;
    use faultline_contracts::files::read_pact;
    let before = read_pact(old).then(NOTHING_COMPARED)?;
    let after = read_pact(new).then(NOTHING_COMPARED)?;
    let diff = diff_pacts(&before, &after);
    if json {
        println!("{}", serde_json::to_string_pretty(&diff)?);
    } else {
        if let Some(renamed) = &diff.renamed {
            println!("RENAMED {renamed}");
        }
        for change in &diff.changes {
            let kind = change.kind.to_string().to_uppercase();
            println!(
                "{kind} {:?} ({})",
                change.interaction,
                change.parts.join(", ")
            );
            for c in &change.counterexamples {
                println!("    counterexample ({}): {}", c.side, c.example);
                for m in &c.mismatches {
                    println!("        {m}");
                }
            }
        }
    }
    let summary = format!(
        "{} -> {}: {} change(s)",
        diff.consumer,
        diff.provider,
        diff.changes.len()
    );
    if diff.needs_verification() {
        eprintln!("{summary}; the new pact asks something the provider was not verified for");
        Err(CliError::CheckFailed)
    } else {
        eprintln!("{summary}; nothing new is asked of the provider");
        Ok(())
    }
}
