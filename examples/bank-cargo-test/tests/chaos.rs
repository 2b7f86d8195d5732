//! The bank's chaos tests, through faultline's library: start the system its description
//! gives, run each scenario on it, and fail when an invariant broke.

#[tokio::test]
async fn the_bank_keeps_its_promises_through_a_database_outage_and_slow_answers(
) -> Result<(), faultline::Error> {
    let mut bank = faultline::System::load("../bank/faultline.toml")?
        .start()
        .await?
        .reports_in(std::env::temp_dir().join("bank-chaos-tests-reports"));
    for scenario in [
        "../bank/scenarios/ledger-database-outage.toml",
        "../bank/scenarios/retried-transfers-apply-once.toml",
    ] {
        let run = bank.run(&faultline::Scenario::load(scenario)?).await?;
        run.assert_held();
    }
    bank.stop().await
}

#[test]
fn a_scenario_that_targets_what_the_bank_lacks_is_refused_before_anything_starts() {
    let system = faultline::System::load("../bank/faultline.toml").unwrap();
    let scenario = faultline::Scenario::load("tests/wrong-link.toml").unwrap();
    match system.validate(&scenario) {
        Err(faultline::Error::Scenario(e)) => {
            assert_eq!(e.field, "faults[0].target");
            assert!(e.reason.contains("unknown link \"teller->kafka\""), "{e}");
        }
        other => panic!("expected a scenario error, got {other:?}"),
    }
}
