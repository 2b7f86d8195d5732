//! The host's own Toxiproxy, which carries the links between services (a container cannot
//! reach the host's loopback).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use faultline_chaos::toxiproxy::ToxiproxyClient;
use tokio::process::{Child, Command};

use crate::infra::{Images, Infra};
use super::{StackError, io_error};
use super::process::{die_with_parent, free_port, service_bin_dir};

/// The host Toxiproxy process carrying the service-to-service links.
pub(super) struct HostToxiproxy {
    pub(super) child: Child,
    pub(super) client: ToxiproxyClient,
}

pub(super) async fn start_host_toxiproxy(
    infra: &Infra,
    images: &Images,
    run_dir: &Path,
) -> Result<HostToxiproxy, StackError> {
    let cache = service_bin_dir().join("faultline-tools");
    let binary = infra.toxiproxy_binary(images, &cache).await?;
    let port = free_port()?;
    let log = run_dir.join("toxiproxy-host.log");
    let log_file =
        std::fs::File::create(&log).map_err(io_error(format!("creating {}", log.display())))?;
    let mut command = Command::new(&binary);
    die_with_parent(&mut command);
    let child = command
        .args(["-host", "127.0.0.1", "-port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            log_file
                .try_clone()
                .map_err(io_error("duplicating a log handle"))?,
        ))
        .stderr(Stdio::from(log_file))
        .kill_on_drop(true)
        .spawn()
        .map_err(io_error(format!("starting {}", binary.display())))?;
    let client = ToxiproxyClient::new(format!("http://127.0.0.1:{port}"))?;
    let clock = Instant::now();
    loop {
        match client.version().await {
            Ok(_) => break,
            Err(e) if clock.elapsed() > Duration::from_secs(20) => {
                return Err(StackError::Io {
                    action: format!("starting the host Toxiproxy ({})", binary.display()),
                    message: format!("{e}; log: {}", log.display()),
                })
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    Ok(HostToxiproxy { child, client })
}
