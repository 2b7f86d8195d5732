//! The Toxiproxy client against a real Toxiproxy server.
//!
//! Each test starts its own Toxiproxy container (`InfraConfig::toxiproxy_only`), so tests
//! share no proxies and may run in parallel; the container goes when `infra` is dropped.
//!
//! Traffic through a proxy needs an upstream the container can reach, and the container
//! cannot reach the host's loopback. So the upstream is Toxiproxy itself: a proxy listening
//! on container port 20000 forwards to `127.0.0.1:8474`, Toxiproxy's own API inside the
//! container, and a "proxied request" is `GET /version` sent to the host port mapped to
//! 20000. Whatever a toxic or a partition does to that request, it does to any service's
//! traffic.

use std::time::{Duration, Instant};

use faultline_chaos::toxiproxy::{
    NewProxy, ProxyUpdate, Stream, Toxic, ToxicKind, ToxicUpdate, ToxiproxyClient, ToxiproxyError,
};
use faultline_harness::infra::{Infra, InfraConfig};

/// Toxiproxy's own API, as seen from inside its container.
const API_UPSTREAM: &str = "127.0.0.1:8474";

/// The first container port the harness exposes for proxies (20000..=20031).
const PROXY_PORT: u16 = 20000;

/// The listen address of a proxy on `container_port`.
fn listen(container_port: u16) -> String {
    format!("0.0.0.0:{container_port}")
}

/// Sends `GET /version` through the proxy listening on `container_port`, on a new
/// connection, and returns the version Toxiproxy answered through it.
async fn request_through(infra: &Infra, container_port: u16) -> Result<String, ToxiproxyError> {
    let port = infra.toxiproxy_host_port(container_port);
    ToxiproxyClient::with_timeout(format!("http://127.0.0.1:{port}"), Duration::from_secs(5))?
        .version()
        .await
}

/// How long a request through the proxy on `container_port` takes; it must succeed.
async fn timed_request_through(infra: &Infra, container_port: u16) -> anyhow::Result<Duration> {
    let start = Instant::now();
    request_through(infra, container_port).await?;
    Ok(start.elapsed())
}

#[tokio::test]
async fn proxy_create_list_get_update_delete_round_trip() -> anyhow::Result<()> {
    let infra = Infra::start(InfraConfig::toxiproxy_only()).await?;
    let toxiproxy = infra.toxiproxy_client();
    assert!(!toxiproxy.version().await?.is_empty());

    let created = toxiproxy
        .create_proxy(&NewProxy::new("api", listen(PROXY_PORT), API_UPSTREAM))
        .await?;
    assert_eq!(created.name, "api");
    assert_eq!(created.upstream, API_UPSTREAM);
    assert!(created.listen.ends_with(":20000"), "{}", created.listen);
    assert!(created.enabled);
    assert!(created.toxics.is_empty());

    let listed = toxiproxy.proxies().await?;
    assert_eq!(listed.keys().collect::<Vec<_>>(), ["api"]);
    assert_eq!(listed["api"], created);
    assert_eq!(toxiproxy.proxy("api").await?, created);
    assert_eq!(
        request_through(&infra, PROXY_PORT).await?,
        toxiproxy.version().await?
    );

    // Move the proxy to another port: traffic follows it.
    let moved = toxiproxy
        .update_proxy(
            "api",
            &ProxyUpdate {
                listen: Some(listen(PROXY_PORT + 1)),
                ..ProxyUpdate::default()
            },
        )
        .await?;
    assert!(moved.listen.ends_with(":20001"), "{}", moved.listen);
    assert_eq!(moved.upstream, API_UPSTREAM);
    assert!(moved.enabled);
    assert_eq!(toxiproxy.proxy("api").await?, moved);
    request_through(&infra, PROXY_PORT + 1).await?;
    let old_port = request_through(&infra, PROXY_PORT).await;
    assert!(
        matches!(&old_port, Err(e) if e.is_transport()),
        "{old_port:?}"
    );

    toxiproxy.delete_proxy("api").await?;
    let gone = toxiproxy.proxy("api").await.unwrap_err();
    assert!(gone.is_not_found(), "{gone:?}");
    assert!(toxiproxy.proxies().await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn disabling_a_proxy_cuts_proxied_requests_and_enabling_restores_them() -> anyhow::Result<()>
{
    let infra = Infra::start(InfraConfig::toxiproxy_only()).await?;
    let toxiproxy = infra.toxiproxy_client();
    toxiproxy
        .create_proxy(&NewProxy::new("api", listen(PROXY_PORT), API_UPSTREAM))
        .await?;
    request_through(&infra, PROXY_PORT).await?;

    let disabled = toxiproxy.disable("api").await?;
    assert!(!disabled.enabled);
    assert!(!toxiproxy.proxy("api").await?.enabled);
    let cut = request_through(&infra, PROXY_PORT).await;
    assert!(matches!(&cut, Err(e) if e.is_transport()), "{cut:?}");

    let enabled = toxiproxy.enable("api").await?;
    assert!(enabled.enabled);
    request_through(&infra, PROXY_PORT).await?;
    Ok(())
}

#[tokio::test]
async fn creating_a_proxy_twice_is_a_conflict() -> anyhow::Result<()> {
    let infra = Infra::start(InfraConfig::toxiproxy_only()).await?;
    let toxiproxy = infra.toxiproxy_client();
    let proxy = NewProxy::new("api", listen(PROXY_PORT), API_UPSTREAM);
    toxiproxy.create_proxy(&proxy).await?;

    let err = toxiproxy.create_proxy(&proxy).await.unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    assert_eq!(
        err.server_message().as_deref(),
        Some("proxy already exists")
    );
    Ok(())
}

#[tokio::test]
async fn unknown_proxy_or_toxic_is_not_found() -> anyhow::Result<()> {
    let infra = Infra::start(InfraConfig::toxiproxy_only()).await?;
    let toxiproxy = infra.toxiproxy_client();
    let latency = Toxic::new(
        "slow",
        ToxicKind::Latency {
            latency_ms: 1,
            jitter_ms: 0,
        },
    );

    let errors = [
        toxiproxy.proxy("nope").await.map(drop),
        toxiproxy.enable("nope").await.map(drop),
        toxiproxy.delete_proxy("nope").await,
        toxiproxy.toxics("nope").await.map(drop),
        toxiproxy.add_toxic("nope", &latency).await.map(drop),
    ];
    for result in errors {
        let err = result.unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
        assert_eq!(err.server_message().as_deref(), Some("proxy not found"));
    }

    toxiproxy
        .create_proxy(&NewProxy::new("api", listen(PROXY_PORT), API_UPSTREAM))
        .await?;
    let update = ToxicUpdate::new(latency.kind.clone());
    let errors = [
        toxiproxy.toxic("api", "nope").await.map(drop),
        toxiproxy
            .update_toxic("api", "nope", &update)
            .await
            .map(drop),
        toxiproxy.remove_toxic("api", "nope").await,
    ];
    for result in errors {
        let err = result.unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
        assert_eq!(err.server_message().as_deref(), Some("toxic not found"));
    }
    Ok(())
}

#[tokio::test]
async fn every_toxic_kind_can_be_added_read_updated_and_removed() -> anyhow::Result<()> {
    let infra = Infra::start(InfraConfig::toxiproxy_only()).await?;
    let toxiproxy = infra.toxiproxy_client();
    toxiproxy
        .create_proxy(&NewProxy::new("api", listen(PROXY_PORT), API_UPSTREAM))
        .await?;

    // Each kind, first as added and then as updated.
    let kinds = [
        (
            ToxicKind::Latency {
                latency_ms: 300,
                jitter_ms: 20,
            },
            ToxicKind::Latency {
                latency_ms: 50,
                jitter_ms: 0,
            },
        ),
        (
            ToxicKind::Bandwidth {
                kilobytes_per_second: 64,
            },
            ToxicKind::Bandwidth {
                kilobytes_per_second: 1024,
            },
        ),
        (
            ToxicKind::SlowClose { delay_ms: 1500 },
            ToxicKind::SlowClose { delay_ms: 10 },
        ),
        (
            ToxicKind::Timeout { timeout_ms: 0 },
            ToxicKind::Timeout { timeout_ms: 2000 },
        ),
        (
            ToxicKind::ResetPeer { timeout_ms: 100 },
            ToxicKind::ResetPeer { timeout_ms: 0 },
        ),
        (
            ToxicKind::Slicer {
                average_size: 64,
                size_variation: 32,
                delay_us: 10,
            },
            ToxicKind::Slicer {
                average_size: 1024,
                size_variation: 0,
                delay_us: 0,
            },
        ),
        (
            ToxicKind::LimitData { bytes: 4096 },
            ToxicKind::LimitData { bytes: 1 },
        ),
    ];

    let mut added = Vec::new();
    for (i, (kind, _)) in kinds.iter().enumerate() {
        let stream = if i % 2 == 0 {
            Stream::Downstream
        } else {
            Stream::Upstream
        };
        let toxic = Toxic::new(format!("{}_{i}", kind.type_name()), kind.clone())
            .with_stream(stream)
            .with_toxicity(0.5);
        assert_eq!(toxiproxy.add_toxic("api", &toxic).await?, toxic);
        assert_eq!(toxiproxy.toxic("api", &toxic.name).await?, toxic);
        added.push(toxic);
    }
    let mut listed = toxiproxy.toxics("api").await?;
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    added.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(listed, added);
    assert_eq!(toxiproxy.proxy("api").await?.toxics.len(), kinds.len());

    let duplicate = toxiproxy.add_toxic("api", &added[0]).await.unwrap_err();
    assert!(duplicate.is_conflict(), "{duplicate:?}");

    for (i, (kind, updated_kind)) in kinds.iter().enumerate() {
        let name = format!("{}_{i}", kind.type_name());
        let before = toxiproxy.toxic("api", &name).await?;
        let update = ToxicUpdate::new(updated_kind.clone()).with_toxicity(0.25);
        let expected = Toxic {
            kind: updated_kind.clone(),
            toxicity: 0.25,
            ..before
        };
        assert_eq!(
            toxiproxy.update_toxic("api", &name, &update).await?,
            expected
        );
        assert_eq!(toxiproxy.toxic("api", &name).await?, expected);

        // Leaving the toxicity out keeps it.
        let attributes_only = ToxicUpdate::new(kind.clone());
        let reverted = toxiproxy
            .update_toxic("api", &name, &attributes_only)
            .await?;
        assert_eq!((reverted.kind, reverted.toxicity), (kind.clone(), 0.25));
    }

    for toxic in &added {
        toxiproxy.remove_toxic("api", &toxic.name).await?;
        let gone = toxiproxy.toxic("api", &toxic.name).await.unwrap_err();
        assert!(gone.is_not_found(), "{gone:?}");
    }
    assert!(toxiproxy.toxics("api").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn updating_a_toxic_with_another_kind_is_reported_not_ignored() -> anyhow::Result<()> {
    let infra = Infra::start(InfraConfig::toxiproxy_only()).await?;
    let toxiproxy = infra.toxiproxy_client();
    toxiproxy
        .create_proxy(&NewProxy::new("api", listen(PROXY_PORT), API_UPSTREAM))
        .await?;
    let latency = ToxicKind::Latency {
        latency_ms: 300,
        jitter_ms: 0,
    };
    toxiproxy
        .add_toxic("api", &Toxic::new("slow", latency.clone()))
        .await?;

    let update = ToxicUpdate::new(ToxicKind::Bandwidth {
        kilobytes_per_second: 1,
    });
    let err = toxiproxy
        .update_toxic("api", "slow", &update)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ToxiproxyError::KindMismatch { sent, actual, .. }
            if sent == "bandwidth" && actual == "latency"),
        "{err:?}"
    );
    assert_eq!(toxiproxy.toxic("api", "slow").await?.kind, latency);
    Ok(())
}

#[tokio::test]
async fn unknown_toxic_type_is_a_bad_request() -> anyhow::Result<()> {
    let infra = Infra::start(InfraConfig::toxiproxy_only()).await?;
    let toxiproxy = infra.toxiproxy_client();
    toxiproxy
        .create_proxy(&NewProxy::new("api", listen(PROXY_PORT), API_UPSTREAM))
        .await?;
    let unknown = Toxic::new(
        "mystery",
        ToxicKind::Other {
            type_name: "no_such_toxic".into(),
            // JSON null: the server rejects the type before it looks at the attributes.
            attributes: Default::default(),
        },
    );
    let err = toxiproxy.add_toxic("api", &unknown).await.unwrap_err();
    assert!(err.is_bad_request(), "{err:?}");
    assert!(toxiproxy.toxics("api").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn latency_toxic_delays_proxied_requests_by_at_least_its_latency() -> anyhow::Result<()> {
    const LATENCY: Duration = Duration::from_millis(300);
    // The parts of a round trip the toxic does not touch vary a little between requests;
    // comparing fastest with fastest leaves only that much noise.
    const NOISE: Duration = Duration::from_millis(20);
    const SAMPLES: usize = 3;

    let infra = Infra::start(InfraConfig::toxiproxy_only()).await?;
    let toxiproxy = infra.toxiproxy_client();
    toxiproxy
        .create_proxy(&NewProxy::new("api", listen(PROXY_PORT), API_UPSTREAM))
        .await?;
    // Warm-up: the first request through a fresh container can be slow for reasons of its own.
    request_through(&infra, PROXY_PORT).await?;

    let mut baseline = Duration::MAX;
    for _ in 0..SAMPLES {
        baseline = baseline.min(timed_request_through(&infra, PROXY_PORT).await?);
    }

    let slow = Toxic::new(
        "slow",
        ToxicKind::Latency {
            latency_ms: LATENCY.as_millis() as u64,
            jitter_ms: 0,
        },
    );
    toxiproxy.add_toxic("api", &slow).await?;
    let mut delayed = Duration::MAX;
    for _ in 0..SAMPLES {
        let elapsed = timed_request_through(&infra, PROXY_PORT).await?;
        // Toxiproxy holds every chunk of the answer for the full latency.
        assert!(
            elapsed >= LATENCY,
            "request took {elapsed:?} under a {LATENCY:?} toxic"
        );
        delayed = delayed.min(elapsed);
    }
    assert!(
        delayed + NOISE >= baseline + LATENCY,
        "fastest request took {delayed:?} with the toxic, {baseline:?} without: \
         less than {LATENCY:?} longer"
    );
    Ok(())
}

#[tokio::test]
async fn populate_creates_every_proxy() -> anyhow::Result<()> {
    let infra = Infra::start(InfraConfig::toxiproxy_only()).await?;
    let toxiproxy = infra.toxiproxy_client();
    let wanted = [
        NewProxy::new("api_a", listen(PROXY_PORT), API_UPSTREAM),
        NewProxy::new("api_b", listen(PROXY_PORT + 1), API_UPSTREAM),
        NewProxy::new("api_c", listen(PROXY_PORT + 2), API_UPSTREAM).disabled(),
    ];

    let populated = toxiproxy.populate(&wanted).await?;
    let mut names: Vec<_> = populated.iter().map(|p| p.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["api_a", "api_b", "api_c"]);

    let listed = toxiproxy.proxies().await?;
    assert_eq!(listed.len(), wanted.len());
    for proxy in &wanted {
        let found = &listed[&proxy.name];
        assert_eq!(found.upstream, proxy.upstream);
        assert_eq!(found.enabled, proxy.enabled, "{}", proxy.name);
    }
    request_through(&infra, PROXY_PORT).await?;
    request_through(&infra, PROXY_PORT + 1).await?;
    let disabled = request_through(&infra, PROXY_PORT + 2).await;
    assert!(
        matches!(&disabled, Err(e) if e.is_transport()),
        "{disabled:?}"
    );

    // Populating the same proxies again changes nothing and is no error.
    assert_eq!(toxiproxy.populate(&wanted).await?.len(), wanted.len());
    assert_eq!(toxiproxy.proxies().await?.len(), wanted.len());
    Ok(())
}

#[tokio::test]
async fn reset_removes_toxics_and_reenables_proxies() -> anyhow::Result<()> {
    let infra = Infra::start(InfraConfig::toxiproxy_only()).await?;
    let toxiproxy = infra.toxiproxy_client();
    toxiproxy
        .populate(&[
            NewProxy::new("api_a", listen(PROXY_PORT), API_UPSTREAM),
            NewProxy::new("api_b", listen(PROXY_PORT + 1), API_UPSTREAM),
        ])
        .await?;
    let cut = Toxic::new("cut", ToxicKind::Timeout { timeout_ms: 0 });
    toxiproxy.add_toxic("api_a", &cut).await?;
    toxiproxy
        .add_toxic("api_b", &cut.clone().with_stream(Stream::Upstream))
        .await?;
    toxiproxy.disable("api_b").await?;

    toxiproxy.reset().await?;

    let proxies = toxiproxy.proxies().await?;
    assert_eq!(proxies.len(), 2, "reset must not delete proxies");
    for proxy in proxies.values() {
        assert!(proxy.enabled, "{} still disabled", proxy.name);
        assert!(
            proxy.toxics.is_empty(),
            "{} kept {:?}",
            proxy.name,
            proxy.toxics
        );
    }
    request_through(&infra, PROXY_PORT).await?;
    request_through(&infra, PROXY_PORT + 1).await?;
    Ok(())
}
