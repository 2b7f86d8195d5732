//! Leaving nothing behind: what a run started is removed when it ends, also when it fails or
//! is interrupted, and a later run sweeps leftovers by label.

use faultline_chaos::toxiproxy::ToxiproxyClient;

use super::docker::{self, Engine, Sweep};
use super::InfraError;

/// What a run created and must remove. Dropped with anything left in it, it removes that on a
/// thread of its own, so an [`Infra`] dropped by a failing test or a panic still cleans up.
#[derive(Default)]
pub(super) struct Cleanup {
    /// Container mode: everything labelled with this run goes too, including a container
    /// whose creation was under way when the start was abandoned.
    pub(super) run_id: Option<String>,
    pub(super) containers: Vec<String>,
    pub(super) network: Option<String>,
    /// External mode: proxies created on a Toxiproxy this run does not own.
    pub(super) toxiproxy_url: Option<String>,
    pub(super) proxies: Vec<String>,
}

impl Cleanup {
    pub(super) fn is_empty(&self) -> bool {
        self.run_id.is_none()
            && self.containers.is_empty()
            && self.network.is_none()
            && self.proxies.is_empty()
    }

    pub(super) async fn run(&mut self, engine: Option<Engine>) -> Result<(), InfraError> {
        let mut containers = std::mem::take(&mut self.containers);
        let network = self.network.take();
        let run_id = self.run_id.take();
        let proxies = std::mem::take(&mut self.proxies);
        if let Some(url) = &self.toxiproxy_url {
            let client = ToxiproxyClient::new(url)?;
            for proxy in &proxies {
                match client.delete_proxy(proxy).await {
                    Err(e) if !e.is_not_found() => return Err(e.into()),
                    _ => {}
                }
            }
        }
        if containers.is_empty() && network.is_none() && run_id.is_none() {
            return Ok(());
        }
        let engine = match engine {
            Some(engine) => engine,
            None => Engine::connect().await?,
        };
        if let Some(run_id) = run_id {
            let (labelled, _) = engine.labelled(docker::LABEL_RUN, &run_id).await?;
            let unknown: Vec<String> = labelled
                .into_iter()
                .filter(|id| !containers.contains(id))
                .collect();
            containers.extend(unknown);
        }
        engine.remove(&containers, network.as_deref()).await
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.is_empty() {
            return;
        }
        let mut leftover = Cleanup {
            run_id: self.run_id.take(),
            containers: std::mem::take(&mut self.containers),
            network: self.network.take(),
            toxiproxy_url: self.toxiproxy_url.take(),
            proxies: std::mem::take(&mut self.proxies),
        };
        // A fresh runtime on a fresh thread: the caller's runtime may be shutting down, and
        // blocking inside it would deadlock a current-thread runtime.
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime
                .block_on(leftover.run(None))
                .map_err(|e| std::io::Error::other(e.to_string()))
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("faultline: cleanup after drop failed (a later run sweeps it): {e}")
            }
            Err(_) => {
                eprintln!("faultline: cleanup thread panicked (a later run sweeps the leftovers)")
            }
        }
    }
}

/// Removes leftovers of crashed runs without starting anything.
pub async fn sweep_leftovers() -> Result<Sweep, InfraError> {
    Engine::connect().await?.sweep_leftovers().await
}

/// Removes every container and network that this process created, whichever run they belong
/// to: what an interrupted command does before it exits.
pub async fn remove_own_resources() -> Result<(), InfraError> {
    let engine = Engine::connect().await?;
    let (containers, networks) = engine
        .labelled(docker::LABEL_PID, &std::process::id().to_string())
        .await?;
    engine.remove(&containers, None).await?;
    for network in &networks {
        engine.remove(&[], Some(network)).await?;
    }
    Ok(())
}
