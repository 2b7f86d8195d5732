//! `faultline bench saga | contracts | infra | proxy`: each prints a table and its JSON, and writes
//! the JSON to `--out` when asked.

use anyhow::Context;
use std::path::{Path, PathBuf};

use faultline_harness::bench::{self, Builds};
use faultline_harness::extension::BenchSettings;
use faultline_harness::system::System;

use crate::error::{CliError, Then, NOTHING_STARTED};
use crate::flags::{BenchCommand, ServicesBuild};

pub async fn exec(
    command: BenchCommand,
    services_build: ServicesBuild,
    system: Option<&Path>,
) -> Result<(), CliError> {
    match command {
        BenchCommand::Saga(args) => {
            // The system's own benchmark, offered by the extension its description names.
            let (system, registry) = crate::system(system)?;
            let saga = registry
                .benchmark("saga")
                .map_err(|offered| {
                    CliError::input(anyhow::anyhow!(
                        "bench saga: {} offers no benchmark named saga (its extension: {}; its benchmarks: {})",
                        system.file.display(),
                        registry.name().unwrap_or("none"),
                        if offered.is_empty() { "none".to_string() } else { offered.join(", ") }
                    ))
                })
                .then(NOTHING_STARTED)?;
            let (system, builds) = prepare(system, services_build, true)?;
            let settings = BenchSettings {
                concurrency: args.concurrency,
                units: args.orders,
                links: args.links.into(),
            };
            eprintln!(
                "starting {} and placing {} orders at each of {:?}…",
                system.name, settings.units, settings.concurrency
            );
            let result = saga.run(&system, &settings).await?;
            show(&builds, &result.json, result.table, args.out)
        }
        BenchCommand::Contracts(args) => {
            let (system, builds) = prepare(crate::system(system)?.0, services_build, true)?;
            let iterations = args.iterations;
            let pacts = args
                .pacts
                .unwrap_or_else(|| crate::shipped("contracts/pacts"));
            // Read first, so a bad pact is refused before a stack starts.
            faultline_contracts::files::read_pacts(&pacts).then(NOTHING_STARTED)?;
            eprintln!(
                "starting {} and verifying the pacts {iterations} times with each verifier…",
                system.name
            );
            let binary = faultline_harness::contracts::pact_binary();
            let result = bench::contracts(&system, iterations, &pacts, &binary).await?;
            show(&builds, &result, result.table(), args.out)
        }
        BenchCommand::Infra(args) => {
            // The infrastructure's benchmark does not time the services.
            let (system, builds) = prepare(crate::system(system)?.0, services_build, false)?;
            let iterations = args.iterations;
            eprintln!("starting and tearing down the stack {iterations} times…");
            let result = bench::infra(&system, iterations).await?;
            show(&builds, &result, result.table(), args.out)
        }
        BenchCommand::Proxy(args) => {
            // faultline's own code and no system: the build that counts is faultline's.
            let builds = Builds {
                faultline: bench::faultline_build().to_string(),
                services: "none (the callee runs in faultline's process)".to_string(),
                services_dir: PathBuf::new(),
            };
            eprint!("{}", builds.line());
            eprintln!(
                "sending {} requests each way at each of {:?}…",
                args.requests, args.concurrency
            );
            let result = bench::proxy(&args.concurrency, args.requests)
                .await
                .map_err(|e| CliError::CouldNotRun(anyhow::anyhow!("bench proxy: {e}")))?;
            show(&builds, &result, result.table(), args.out)
        }
    }
}

/// The system a benchmark starts with its environment checked, and the builds it will time.
fn prepare(
    system: System,
    services_build: ServicesBuild,
    timed: bool,
) -> Result<(System, Builds), CliError> {
    faultline_harness::infra::InfraConfig::for_system(&system)
        .check_environment()
        .then(NOTHING_STARTED)?;
    let builds = services(&system, services_build, timed)?;
    eprint!("{}", builds.line());
    Ok((system, builds))
}

/// The services' binaries the benchmark will time: built in release now, or those at hand.
fn services(system: &System, build: ServicesBuild, timed: bool) -> Result<Builds, CliError> {
    let binaries = system.binaries();
    let (services, services_dir) = match build {
        _ if !timed => (
            "not timed".to_string(),
            faultline_harness::stack::service_bin_dir(),
        ),
        ServicesBuild::Release if !binaries.is_empty() => {
            let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let workspace = source.canonicalize().unwrap_or(source);
            if !workspace.join("Cargo.toml").is_file() {
                return Err(CliError::input(anyhow::anyhow!(
                    "--services-build release: faultline's source tree ({}) is not here to build {} from; pass --services-build as-is to time the binaries at hand",
                    workspace.display(),
                    binaries.join(", ")
                )))
                .then(NOTHING_STARTED);
            }
            eprintln!(
                "building {} with cargo's release profile (once; later runs reuse it)…",
                binaries.join(", ")
            );
            let dir = bench::build_release(&workspace, &binaries)
                .map_err(|e| CliError::CouldNotRun(anyhow::anyhow!(e)))?;
            let _ = faultline_harness::stack::use_service_bin_dir(dir.clone());
            ("release".to_string(), dir)
        }
        _ => {
            let dir = faultline_harness::stack::service_bin_dir();
            let name = if binaries.is_empty() {
                "none built from source (no {bin:…} service)".to_string()
            } else {
                dir.file_name()
                    .map_or("unknown".into(), |n| n.to_string_lossy().into_owned())
            };
            (name, dir)
        }
    };
    Ok(Builds {
        faultline: bench::faultline_build().to_string(),
        services,
        services_dir,
    })
}

/// Prints the table and the JSON (the result with the builds it timed), and writes the JSON
/// to `out` when asked.
fn show(
    builds: &Builds,
    result: &impl serde::Serialize,
    table: String,
    out: Option<PathBuf>,
) -> Result<(), CliError> {
    let mut value = serde_json::to_value(result)?;
    if let Some(fields) = value.as_object_mut() {
        fields.insert("builds".into(), serde_json::to_value(builds)?);
    }
    let json = serde_json::to_string_pretty(&value)?;
    print!("{}{table}", builds.line());
    println!("{json}");
    if let Some(path) = out {
        std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
