//! The payment API against real Postgres (started by the harness, the service's link through
//! Toxiproxy), the service running in-process on a free port. Run with the images of
//! `.faultline/images.env`:
//! `source .faultline/images.env && cargo test -p faultline-payment --test api`.

use std::process::Command;

use anyhow::{ensure, Context};
use faultline_harness::infra::{Infra, InfraConfig};
use faultline_payment::PaymentConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The payment service on its own Postgres, plus a pool for judging what it stored.
struct Running {
    infra: Infra,
    base: String,
    http: reqwest::Client,
    db: PgPool,
    shutdown: CancellationToken,
    service: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn start() -> anyhow::Result<Self> {
        let infra = Infra::start(InfraConfig {
            kafka: false,
            ..InfraConfig::with_clients(["payment"])
        })
        .await?;
        let config = PaymentConfig::local(infra.postgres_url("payment")?);
        let server = faultline_payment::bind(&config).await?;
        let base = format!("http://{}", server.local_addr());
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let service = tokio::spawn(async move { Ok(server.run(token).await?) });
        let db = PgPool::connect(&infra.postgres_admin_url()?).await?;
        Ok(Self {
            infra,
            base,
            http: reqwest::Client::new(),
            db,
            shutdown,
            service,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.service.await??;
        self.db.close().await;
        self.infra.shutdown().await?;
        Ok(())
    }

    async fn post(
        &self,
        path: &str,
        key: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await?;
        let status = response.status();
        Ok((status, response.json().await.context("a JSON body")?))
    }

    async fn charge(
        &self,
        key: &str,
        order_id: Uuid,
        amount_cents: i64,
        card: &str,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let body = json!({"order_id": order_id, "amount_cents": amount_cents, "card": card});
        self.post("/payments/charges", Some(key), &body).await
    }

    async fn refund(&self, key: &str, order_id: Uuid) -> anyhow::Result<(StatusCode, Value)> {
        self.post(
            "/payments/refunds",
            Some(key),
            &json!({"order_id": order_id}),
        )
        .await
    }

    async fn money(&self, order_id: Uuid) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(format!("{}/payments/orders/{order_id}", self.base))
            .send()
            .await?;
        ensure!(
            response.status() == StatusCode::OK,
            "GET money: {}",
            response.status()
        );
        Ok(response.json().await?)
    }

    async fn charge_rows(&self, order_id: Uuid, status: &str) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM charges WHERE order_id = $1 AND status = $2")
                .bind(order_id)
                .bind(status)
                .fetch_one(&self.db)
                .await?,
        )
    }
}

const GOOD_CARD: &str = "4242424242424242";
const DECLINING_CARD: &str = "4000000000000002";

fn key() -> String {
    format!("test-{}", Uuid::new_v4())
}

#[tokio::test]
async fn charges_are_replayed_by_key_and_take_money_once_per_order() -> anyhow::Result<()> {
    let payment = Running::start().await?;

    // A replay answers the same and charges nothing more.
    let (order, first_key) = (Uuid::new_v4(), key());
    let (status, first) = payment.charge(&first_key, order, 1250, GOOD_CARD).await?;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["status"], "CHARGED");
    assert_eq!(first["amount_cents"], 1250);
    let (status, again) = payment.charge(&first_key, order, 1250, GOOD_CARD).await?;
    assert_eq!((status, &again), (StatusCode::CREATED, &first));
    assert_eq!(payment.charge_rows(order, "CHARGED").await?, 1);

    // The same key for a different request is refused, and charges nothing.
    let (status, reused) = payment.charge(&first_key, order, 999, GOOD_CARD).await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reused["error"], "idempotency_key_reused");

    // Another key for the same order cannot charge it again.
    let (status, second) = payment.charge(&key(), order, 1250, GOOD_CARD).await?;
    assert_eq!(status, StatusCode::CONFLICT, "{second}");
    assert_eq!(second["error"], "already_charged");
    assert_eq!(second["charge_id"], first["charge_id"]);
    assert_eq!(payment.charge_rows(order, "CHARGED").await?, 1);
    assert_eq!(payment.money(order).await?["net_cents"], 1250);

    // 20 simultaneous identical requests: one charge, 20 equal answers.
    let (order, shared_key) = (Uuid::new_v4(), key());
    let mut requests = JoinSet::new();
    for _ in 0..20 {
        let (http, base, key) = (
            payment.http.clone(),
            payment.base.clone(),
            shared_key.clone(),
        );
        requests.spawn(async move {
            let response = http
                .post(format!("{base}/payments/charges"))
                .header("Idempotency-Key", key)
                .json(&json!({"order_id": order, "amount_cents": 500, "card": GOOD_CARD}))
                .send()
                .await?;
            anyhow::Ok((response.status(), response.json::<Value>().await?))
        });
    }
    let answers: Vec<_> = requests
        .join_all()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    assert_eq!(answers.len(), 20);
    assert_eq!(answers[0].0, StatusCode::CREATED, "{}", answers[0].1);
    assert!(
        answers.iter().all(|answer| *answer == answers[0]),
        "{answers:?}"
    );
    assert_eq!(payment.charge_rows(order, "CHARGED").await?, 1);
    let money = payment.money(order).await?;
    assert_eq!(
        (money["charged_cents"].as_i64(), money["charges"].as_i64()),
        (Some(500), Some(1))
    );

    payment.stop().await
}

#[tokio::test]
async fn declines_and_refunds_leave_no_money_and_voided_orders_refuse_charges() -> anyhow::Result<()>
{
    let payment = Running::start().await?;

    // The declining card: 402, recorded, replayed, no money.
    let (order, decline_key) = (Uuid::new_v4(), key());
    let (status, declined) = payment
        .charge(&decline_key, order, 700, DECLINING_CARD)
        .await?;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{declined}");
    assert_eq!(
        (declined["error"].as_str(), declined["status"].as_str()),
        (Some("card_declined"), Some("DECLINED"))
    );
    assert!(declined["charge_id"].is_string());
    assert_eq!(
        payment
            .charge(&decline_key, order, 700, DECLINING_CARD)
            .await?,
        (status, declined)
    );
    let money = payment.money(order).await?;
    assert_eq!(
        (
            money["charged_cents"].as_i64(),
            money["net_cents"].as_i64(),
            money["charges"].as_i64()
        ),
        (Some(0), Some(0), Some(0))
    );

    // Charge, refund: net zero, the order voided, a later charge refused, refunds idempotent.
    let order = Uuid::new_v4();
    let (status, _) = payment.charge(&key(), order, 4200, GOOD_CARD).await?;
    assert_eq!(status, StatusCode::CREATED);
    let refund_key = key();
    let (status, refunded) = payment.refund(&refund_key, order).await?;
    assert_eq!(status, StatusCode::CREATED, "{refunded}");
    assert_eq!(
        refunded,
        json!({"order_id": order, "refunded_cents": 4200, "status": "REFUNDED"})
    );
    assert_eq!(
        payment.refund(&refund_key, order).await?,
        (StatusCode::CREATED, refunded.clone())
    );
    assert_eq!(
        payment.refund(&key(), order).await?,
        (StatusCode::CREATED, refunded)
    );
    let money = payment.money(order).await?;
    assert_eq!(
        money,
        json!({"order_id": order, "charged_cents": 4200, "refunded_cents": 4200, "net_cents": 0, "charges": 1, "voided": true})
    );
    let (status, late) = payment.charge(&key(), order, 4200, GOOD_CARD).await?;
    assert_eq!(
        (status, late["error"].as_str()),
        (StatusCode::CONFLICT, Some("order_voided"))
    );

    // A refund before any charge voids the order: the delayed charge is refused.
    let order = Uuid::new_v4();
    let (status, voided) = payment.refund(&key(), order).await?;
    assert_eq!(
        (
            status,
            voided["status"].as_str(),
            voided["refunded_cents"].as_i64()
        ),
        (StatusCode::CREATED, Some("VOIDED"), Some(0))
    );
    let (status, late) = payment.charge(&key(), order, 100, GOOD_CARD).await?;
    assert_eq!(
        (status, late["error"].as_str()),
        (StatusCode::CONFLICT, Some("order_voided"))
    );
    assert_eq!(payment.money(order).await?["net_cents"], 0);

    // A charge racing its order's refund: whichever wins, no money stays taken.
    let orders: Vec<Uuid> = (0..10).map(|_| Uuid::new_v4()).collect();
    let mut requests = JoinSet::new();
    for order in &orders {
        let (base, order) = (payment.base.clone(), *order);
        for path in ["/payments/charges", "/payments/refunds"] {
            let (http, base) = (payment.http.clone(), base.clone());
            requests.spawn(async move {
                let response = http
                    .post(format!("{base}{path}"))
                    .header("Idempotency-Key", key())
                    .json(&json!({"order_id": order, "amount_cents": 300, "card": GOOD_CARD}))
                    .send()
                    .await?;
                anyhow::Ok(response.status())
            });
        }
    }
    for status in requests.join_all().await {
        let status = status?;
        assert!(
            matches!(status, StatusCode::CREATED | StatusCode::CONFLICT),
            "{status}"
        );
    }
    for order in orders {
        let money = payment.money(order).await?;
        assert_eq!(
            (money["net_cents"].as_i64(), money["voided"].as_bool()),
            (Some(0), Some(true)),
            "{money}"
        );
    }

    payment.stop().await
}

#[tokio::test]
async fn bad_requests_are_refused_naming_what_is_wrong() -> anyhow::Result<()> {
    let payment = Running::start().await?;
    let order = Uuid::new_v4();
    let body = json!({"order_id": order, "amount_cents": 100, "card": GOOD_CARD});

    let (status, missing) = payment.post("/payments/charges", None, &body).await?;
    assert_eq!(
        (status, missing["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("missing_idempotency_key"))
    );
    let (status, missing) = payment
        .post("/payments/refunds", None, &json!({"order_id": order}))
        .await?;
    assert_eq!(
        (status, missing["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("missing_idempotency_key"))
    );

    for (bad, field) in [
        (
            json!({"order_id": "x", "amount_cents": 100, "card": GOOD_CARD}),
            "order_id",
        ),
        (
            json!({"order_id": order, "amount_cents": 0, "card": GOOD_CARD}),
            "amount_cents",
        ),
        (json!({"order_id": order, "amount_cents": 100}), "card"),
    ] {
        let (status, refused) = payment
            .post("/payments/charges", Some(&key()), &bad)
            .await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        assert_eq!(
            (refused["error"].as_str(), refused["field"].as_str()),
            (Some("invalid_request"), Some(field))
        );
        assert!(
            refused["message"]
                .as_str()
                .unwrap_or_default()
                .contains(field),
            "{refused}"
        );
    }
    assert_eq!(payment.charge_rows(order, "CHARGED").await?, 0);
    payment.stop().await
}

#[test]
fn help_lists_the_environment_variables() {
    let output = Command::new(env!("CARGO_BIN_EXE_payment"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for variable in [
        "PAYMENT_DATABASE_URL",
        "PAYMENT_HTTP_ADDR",
        "PAYMENT_DATABASE_MAX_CONNECTIONS",
    ] {
        assert!(help.contains(variable), "{variable} missing from:\n{help}");
    }
}

#[test]
fn bad_configuration_names_every_variable_and_exits_non_zero() {
    let output = Command::new(env!("CARGO_BIN_EXE_payment"))
        .env_remove("PAYMENT_DATABASE_URL")
        .env("PAYMENT_HTTP_ADDR", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("PAYMENT_DATABASE_URL: required"),
        "{stderr}"
    );
    assert!(
        stderr.contains("PAYMENT_HTTP_ADDR=not-an-address"),
        "{stderr}"
    );

    let output = Command::new(env!("CARGO_BIN_EXE_payment"))
        .env("PAYMENT_DATABASE_URL", "mysql://payment:hunter2@db/payment")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
}
