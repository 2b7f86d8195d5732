//! `faultline broker serve`, and the commands that talk to a broker as its client:
//! `faultline contracts publish | can-i-deploy | record-deployment`.

use std::collections::BTreeMap;
use std::str::FromStr;

use anyhow::anyhow;
use faultline_broker::{Broker, BrokerConfig};

use crate::error::{CliError, Then, NOTHING_STARTED};
use crate::flags::{BrokerCommand, CanIDeployArgs, PublishArgs, RecordDeploymentArgs};
use crate::interrupt::Interrupt;

pub async fn exec(command: BrokerCommand, interrupt: &Interrupt) -> Result<(), CliError> {
    match command {
        BrokerCommand::Serve(args) => serve(args.addr, interrupt).await,
    }
}

/// Serves until interrupted, then stops taking requests and lets the ones in flight finish.
async fn serve(addr: std::net::SocketAddr, interrupt: &Interrupt) -> Result<(), CliError> {
    let config = BrokerConfig::from_env().then(NOTHING_STARTED)?;
    // A URL the Postgres driver cannot even parse is a setting to fix, not a server that
    // failed to answer.
    sqlx::postgres::PgConnectOptions::from_str(&config.database_url)
        .map_err(|error| {
            CliError::input(anyhow!(
                "FAULTLINE_BROKER_DATABASE_URL: not a Postgres URL ({error}); expected one such as postgres://user:password@127.0.0.1:5432/broker"
            ))
        })
        .then(NOTHING_STARTED)?;
    let stop = interrupt.handled_by_command();
    let broker = Broker::start(config, addr).await?;
    println!("faultline broker listening on {}", broker.url());
    stop.await;
    eprintln!("stopping the broker");
    broker.stop().await;
    Err(CliError::Interrupted)
}

/// Publishes every pact, one request per consumer; the broker's notices are printed.
pub async fn publish(args: PublishArgs) -> Result<(), CliError> {
    let dir = args
        .dir
        .unwrap_or_else(|| crate::shipped("contracts/pacts"));
    let pacts = faultline_contracts::files::read_pacts(&dir).then("nothing was published")?;
    let mut by_consumer: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for (_, pact) in pacts {
        by_consumer
            .entry(pact.consumer.name.clone())
            .or_default()
            .push(pact);
    }
    let client = args.broker.client();
    for (consumer, pacts) in &by_consumer {
        let answer = client
            .publish(consumer, &args.version, args.branch.as_deref(), pacts)
            .await
            .map_err(|error| CliError::from(error).context(format!("publishing {consumer} {}", args.version)))?;
        for notice in answer["notices"].as_array().into_iter().flatten() {
            println!("{}", notice["text"].as_str().unwrap_or_default());
        }
    }
    Ok(())
}

/// Exit 0 when the broker says yes; every missing or failed verification printed otherwise.
pub async fn can_i_deploy(args: CanIDeployArgs) -> Result<(), CliError> {
    let answer = args
        .broker
        .client()
        .can_i_deploy(&args.pacticipant, &args.version, &args.to_environment)
        .await?;
    println!(
        "{}: {}",
        if answer.deployable { "yes" } else { "no" },
        answer.reason
    );
    for failure in &answer.failures {
        println!("  missing or failed: {failure}");
    }
    for notice in &answer.notices {
        println!("  note: {notice}");
    }
    if answer.deployable {
        Ok(())
    } else {
        Err(CliError::CheckFailed)
    }
}

pub async fn record_deployment(args: RecordDeploymentArgs) -> Result<(), CliError> {
    let client = args.broker.client();
    if args.create_environment {
        client.ensure_environment(&args.environment, false).await?;
    }
    client
        .record_deployment(
            &args.pacticipant,
            &args.version,
            &args.environment,
            args.release,
        )
        .await?;
    println!(
        "recorded {} {} as {} in {}",
        args.pacticipant,
        args.version,
        if args.release { "released" } else { "deployed" },
        args.environment
    );
    Ok(())
}
