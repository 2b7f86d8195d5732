//! The inventory API against real Postgres (started by the harness, the service's link through
//! Toxiproxy), the service running in-process on a free port. Run with the images of
//! `.faultline/images.env`:
//! `source .faultline/images.env && cargo test -p faultline-inventory --test api`.

use faultline_kit::config::HttpDatabaseConfig;
use std::process::Command;

use anyhow::{ensure, Context};
use faultline_harness::infra::{Infra, InfraConfig};
use faultline_inventory::InventoryConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The inventory service (test mode) on its own Postgres, plus a pool for judging what it stored.
struct Running {
    infra: Infra,
    base: String,
    http: reqwest::Client,
    db: PgPool,
    shutdown: CancellationToken,
    services: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    async fn start() -> anyhow::Result<Self> {
        let infra = Infra::start(InfraConfig {
            kafka: false,
            ..InfraConfig::with_clients(["inventory"])
        })
        .await?;
        let db = PgPool::connect(&infra.postgres_admin_url()?).await?;
        let mut running = Self {
            base: String::new(),
            http: reqwest::Client::new(),
            db,
            shutdown: CancellationToken::new(),
            services: Vec::new(),
            infra,
        };
        running.base = running.serve(true).await?;
        Ok(running)
    }

    /// Starts one more instance on the same database; its base URL.
    async fn serve(&mut self, test_mode: bool) -> anyhow::Result<String> {
        let config = InventoryConfig {
            base: HttpDatabaseConfig {
                test_mode,
                ..HttpDatabaseConfig::local(self.infra.postgres_url("inventory")?)
            },
        };
        let server = faultline_inventory::bind(&config).await?;
        let base = format!("http://{}", server.local_addr());
        let token = self.shutdown.clone();
        self.services
            .push(tokio::spawn(async move { Ok(server.run(token).await?) }));
        Ok(base)
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        for service in self.services {
            service.await??;
        }
        self.db.close().await;
        self.infra.shutdown().await?;
        Ok(())
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<(StatusCode, Value)> {
        let response = request.send().await?;
        let status = response.status();
        Ok((status, response.json().await.context("a JSON body")?))
    }

    async fn set_stock(&self, sku: &str, on_hand: i32) -> anyhow::Result<()> {
        let (status, body) = self
            .send(
                self.http
                    .put(format!("{}/admin/stock/{sku}", self.base))
                    .json(&json!({"on_hand": on_hand})),
            )
            .await?;
        ensure!(status == StatusCode::OK, "setting stock: {status} {body}");
        Ok(())
    }

    async fn reserve(
        &self,
        key: Option<&str>,
        order_id: Uuid,
        sku: &str,
        quantity: i32,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut request = self
            .http
            .post(format!("{}/inventory/reservations", self.base))
            .json(&json!({"order_id": order_id, "sku": sku, "quantity": quantity}));
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        self.send(request).await
    }

    async fn finish(&self, order_id: Uuid, action: &str) -> anyhow::Result<(StatusCode, Value)> {
        self.send(self.http.post(format!(
            "{}/inventory/reservations/{order_id}/{action}",
            self.base
        )))
        .await
    }

    /// (on_hand, reserved, available)
    async fn stock(&self, sku: &str) -> anyhow::Result<(i64, i64, i64)> {
        let (status, body) = self
            .send(
                self.http
                    .get(format!("{}/inventory/stock/{sku}", self.base)),
            )
            .await?;
        ensure!(status == StatusCode::OK, "stock of {sku}: {status} {body}");
        let field = |name: &str| {
            body[name]
                .as_i64()
                .with_context(|| format!("{name} in {body}"))
        };
        Ok((field("on_hand")?, field("reserved")?, field("available")?))
    }

    async fn reservation(&self, order_id: Uuid) -> anyhow::Result<(StatusCode, Value)> {
        self.send(
            self.http
                .get(format!("{}/inventory/reservations/{order_id}", self.base)),
        )
        .await
    }
}

fn key() -> String {
    format!("test-{}", Uuid::new_v4())
}

fn sku() -> String {
    format!("SKU-{}", Uuid::new_v4().simple())
}

#[tokio::test]
async fn concurrent_reservations_never_oversell() -> anyhow::Result<()> {
    let inventory = Running::start().await?;
    let sku = sku();
    inventory.set_stock(&sku, 5).await?;

    let mut requests = JoinSet::new();
    for _ in 0..20 {
        let (http, base, sku) = (inventory.http.clone(), inventory.base.clone(), sku.clone());
        requests.spawn(async move {
            let response = http
                .post(format!("{base}/inventory/reservations"))
                .header("Idempotency-Key", key())
                .json(&json!({"order_id": Uuid::new_v4(), "sku": sku, "quantity": 1}))
                .send()
                .await?;
            anyhow::Ok((response.status(), response.json::<Value>().await?))
        });
    }
    let answers: Vec<(StatusCode, Value)> = requests
        .join_all()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let reserved = answers
        .iter()
        .filter(|(status, body)| *status == StatusCode::CREATED && body["status"] == "RESERVED")
        .count();
    let refused = answers
        .iter()
        .filter(|(status, body)| {
            *status == StatusCode::CONFLICT
                && body["error"] == "out_of_stock"
                && body["available"] == 0
        })
        .count();
    assert_eq!((reserved, refused), (5, 15), "{answers:?}");
    assert_eq!(inventory.stock(&sku).await?, (5, 5, 0));
    let rows: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM reservations WHERE sku = $1 AND status = 'RESERVED'",
    )
    .bind(&sku)
    .fetch_one(&inventory.db)
    .await?;
    assert_eq!(rows, 5);

    // Lowering on_hand below what is reserved is refused; the stock is unchanged.
    let (status, body) = inventory
        .send(
            inventory
                .http
                .put(format!("{}/admin/stock/{sku}", inventory.base))
                .json(&json!({"on_hand": 4})),
        )
        .await?;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("on_hand_below_reserved"))
    );
    assert_eq!(inventory.stock(&sku).await?, (5, 5, 0));

    inventory.stop().await
}

#[tokio::test]
async fn release_returns_stock_commit_removes_it_and_both_are_idempotent() -> anyhow::Result<()> {
    let inventory = Running::start().await?;
    let sku = sku();
    inventory.set_stock(&sku, 10).await?;

    // Reserve, replay, key reuse, second key for the same order.
    let (order, reserve_key) = (Uuid::new_v4(), key());
    let (status, reserved) = inventory
        .reserve(Some(&reserve_key), order, &sku, 2)
        .await?;
    assert_eq!(status, StatusCode::CREATED, "{reserved}");
    assert_eq!(
        (
            reserved["sku"].as_str(),
            reserved["quantity"].as_i64(),
            reserved["status"].as_str()
        ),
        (Some(sku.as_str()), Some(2), Some("RESERVED"))
    );
    assert_eq!(
        inventory
            .reserve(Some(&reserve_key), order, &sku, 2)
            .await?,
        (StatusCode::CREATED, reserved.clone())
    );
    let (status, reused) = inventory
        .reserve(Some(&reserve_key), order, &sku, 3)
        .await?;
    assert_eq!(
        (status, reused["error"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("idempotency_key_reused")
        )
    );
    let (status, twice) = inventory.reserve(Some(&key()), order, &sku, 2).await?;
    assert_eq!(
        (status, twice["error"].as_str()),
        (StatusCode::CONFLICT, Some("already_reserved"))
    );
    assert_eq!(twice["reservation_id"], reserved["reservation_id"]);
    assert_eq!(inventory.stock(&sku).await?, (10, 2, 8));

    // Release gives the units back, once.
    let released = json!({"order_id": order, "status": "RELEASED"});
    assert_eq!(
        inventory.finish(order, "release").await?,
        (StatusCode::OK, released.clone())
    );
    assert_eq!(
        inventory.finish(order, "release").await?,
        (StatusCode::OK, released)
    );
    assert_eq!(inventory.stock(&sku).await?, (10, 0, 10));
    let (_, state) = inventory.reservation(order).await?;
    assert_eq!(
        (state["status"].as_str(), state["quantity"].as_i64()),
        (Some("RELEASED"), Some(2))
    );
    let (status, late) = inventory.finish(order, "commit").await?;
    assert_eq!(
        (status, late["error"].as_str()),
        (StatusCode::CONFLICT, Some("order_released"))
    );

    // Commit takes the units out of stock, once; a release after it is refused.
    let order = Uuid::new_v4();
    assert_eq!(
        inventory.reserve(Some(&key()), order, &sku, 3).await?.0,
        StatusCode::CREATED
    );
    let committed = json!({"order_id": order, "status": "COMMITTED"});
    assert_eq!(
        inventory.finish(order, "commit").await?,
        (StatusCode::OK, committed.clone())
    );
    assert_eq!(
        inventory.finish(order, "commit").await?,
        (StatusCode::OK, committed)
    );
    assert_eq!(inventory.stock(&sku).await?, (7, 0, 7));
    let (status, late) = inventory.finish(order, "release").await?;
    assert_eq!(
        (status, late["error"].as_str()),
        (StatusCode::CONFLICT, Some("already_committed"))
    );
    assert_eq!(inventory.stock(&sku).await?, (7, 0, 7));

    // Commit without a reservation.
    let (status, none) = inventory.finish(Uuid::new_v4(), "commit").await?;
    assert_eq!(
        (status, none["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("no_reservation"))
    );

    inventory.stop().await
}

#[tokio::test]
async fn a_release_before_the_reservation_blocks_it_and_bad_requests_are_named(
) -> anyhow::Result<()> {
    let mut inventory = Running::start().await?;
    let sku = sku();
    inventory.set_stock(&sku, 3).await?;

    // Released first (the saga compensated while the reservation was still on its way).
    let order = Uuid::new_v4();
    let (status, released) = inventory.finish(order, "release").await?;
    assert_eq!(
        (status, released["status"].as_str()),
        (StatusCode::OK, Some("RELEASED"))
    );
    let (status, late) = inventory.reserve(Some(&key()), order, &sku, 1).await?;
    assert_eq!(
        (status, late["error"].as_str()),
        (StatusCode::CONFLICT, Some("order_released"))
    );
    assert_eq!(inventory.stock(&sku).await?, (3, 0, 3));
    let (status, state) = inventory.reservation(order).await?;
    assert_eq!(
        (status, state["status"].as_str(), state["quantity"].as_i64()),
        (StatusCode::OK, Some("RELEASED"), Some(0))
    );

    // More than available, and an unknown SKU: out_of_stock with what is available.
    let (status, short) = inventory
        .reserve(Some(&key()), Uuid::new_v4(), &sku, 4)
        .await?;
    assert_eq!(
        (status, short["error"].as_str(), short["available"].as_i64()),
        (StatusCode::CONFLICT, Some("out_of_stock"), Some(3))
    );
    let (status, unknown) = inventory
        .reserve(Some(&key()), Uuid::new_v4(), "no-such-sku", 1)
        .await?;
    assert_eq!(
        (
            status,
            unknown["error"].as_str(),
            unknown["available"].as_i64()
        ),
        (StatusCode::CONFLICT, Some("out_of_stock"), Some(0))
    );
    let (status, _) = inventory
        .send(
            inventory
                .http
                .get(format!("{}/inventory/stock/no-such-sku", inventory.base)),
        )
        .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = inventory.reservation(Uuid::new_v4()).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Missing key, bad fields.
    let (status, missing) = inventory.reserve(None, Uuid::new_v4(), &sku, 1).await?;
    assert_eq!(
        (status, missing["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("missing_idempotency_key"))
    );
    let (status, bad) = inventory
        .reserve(Some(&key()), Uuid::new_v4(), &sku, 0)
        .await?;
    assert_eq!(
        (status, bad["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("quantity"))
    );
    assert_eq!(inventory.stock(&sku).await?, (3, 0, 3));

    // Without test mode there is no admin endpoint.
    let plain = inventory.serve(false).await?;
    let response = inventory
        .http
        .put(format!("{plain}/admin/stock/{sku}"))
        .json(&json!({"on_hand": 9}))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(inventory.stock(&sku).await?, (3, 0, 3));

    inventory.stop().await
}

#[test]
fn help_lists_the_environment_variables() {
    let output = Command::new(env!("CARGO_BIN_EXE_inventory"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for variable in [
        "INVENTORY_DATABASE_URL",
        "INVENTORY_HTTP_ADDR",
        "INVENTORY_TEST_MODE",
    ] {
        assert!(help.contains(variable), "{variable} missing from:\n{help}");
    }
}

#[test]
fn bad_configuration_names_every_variable_and_exits_non_zero() {
    let output = Command::new(env!("CARGO_BIN_EXE_inventory"))
        .env_remove("INVENTORY_DATABASE_URL")
        .env("INVENTORY_TEST_MODE", "yes")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("INVENTORY_DATABASE_URL: required"),
        "{stderr}"
    );
    assert!(stderr.contains("INVENTORY_TEST_MODE=yes"), "{stderr}");
}
