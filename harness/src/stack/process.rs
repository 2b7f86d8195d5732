//! The services' processes: how one is launched (a host program or a container), started,
//! stopped, killed and paused, and where `{bin:NAME}` programs are found.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::infra::{ContainerSpec, Infra, RunningContainer};
use crate::system::{Readiness, ServiceSpec};
use super::{StackError, io_error};

/// How a service is started: a host process, or a container on the host's network.
pub(super) enum Launch {
    Process { program: PathBuf, args: Vec<String> },
    Container(ContainerSpec),
}

/// A started service.
pub(super) enum Running {
    Process(Child),
    Container(RunningContainer),
}

/// One service and how to start it again.
pub(super) struct ServiceProcess {
    pub(super) spec: ServiceSpec,
    pub(super) launch: Launch,
    /// Its migration step (`before`), when it has one.
    pub(super) before: Option<Launch>,
    pub(super) env: Vec<(String, String)>,
    pub(super) port: Option<u16>,
    pub(super) log: PathBuf,
    pub(super) running: Option<Running>,
}

impl ServiceProcess {
    pub(super) async fn spawn(&mut self, infra: &mut Infra) -> Result<(), StackError> {
        let running = self.launch(&self.launch, infra).await?;
        self.running = Some(running);
        Ok(())
    }

    /// Runs the service's migration step (`before`) to its end, its output in the service's
    /// log: a failure when it exits unsuccessfully or outlasts `before_timeout` (it is then
    /// killed). Nothing to do for a service without one.
    pub(super) async fn run_before(&mut self, infra: &mut Infra) -> Result<(), StackError> {
        let Some(launch) = &self.before else {
            return Ok(());
        };
        let shown = match launch {
            Launch::Process { program, args } => std::iter::once(program.display().to_string())
                .chain(args.iter().cloned())
                .collect::<Vec<_>>()
                .join(" "),
            Launch::Container(spec) => spec.cmd.clone().unwrap_or_default().join(" "),
        };
        {
            use std::io::Write;
            let mut log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log)
                .map_err(io_error(format!("opening {}", self.log.display())))?;
            writeln!(log, "--- faultline: before: {shown} ---")
                .map_err(io_error(format!("writing {}", self.log.display())))?;
        }
        let timeout = self.spec.before_timeout;
        let clock = Instant::now();
        let ended = match self.launch(launch, infra).await? {
            Running::Process(mut child) => match tokio::time::timeout(timeout, child.wait()).await {
                Ok(Ok(status)) if status.success() => Ok(()),
                Ok(Ok(status)) => Err(status.to_string()),
                Ok(Err(e)) => Err(format!("could not be awaited: {e}")),
                Err(_) => {
                    let _ = child.kill().await;
                    Err(format!("still running after {timeout:?} (before_timeout); killed"))
                }
            },
            Running::Container(container) => {
                let ended = loop {
                    match container.state().await {
                        Ok((false, Some(0))) => break Ok(()),
                        Ok((false, code)) => {
                            break Err(format!(
                                "container exited with code {}",
                                code.map_or_else(|| "unknown".to_string(), |c| c.to_string())
                            ))
                        }
                        Ok((true, _)) if clock.elapsed() > timeout => {
                            break Err(format!(
                                "still running after {timeout:?} (before_timeout); removed"
                            ))
                        }
                        Ok((true, _)) => tokio::time::sleep(Duration::from_millis(50)).await,
                        Err(e) => break Err(format!("its container could not be inspected: {e}")),
                    }
                };
                let _ = container.remove().await;
                ended
            }
        };
        ended.map_err(|why| self.failure(format!("its `before` command ({shown}) failed: {why}")))
    }

    /// Starts `launch` with the service's environment, its output appended to the log.
    async fn launch(&self, launch: &Launch, infra: &mut Infra) -> Result<Running, StackError> {
        Ok(match launch {
            Launch::Process { program, args } => {
                let log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.log)
                    .map_err(io_error(format!("opening {}", self.log.display())))?;
                let stderr = log
                    .try_clone()
                    .map_err(io_error("duplicating a log handle"))?;
                let mut command = Command::new(program);
                die_with_parent(&mut command);
                let child = command
                    .args(args)
                    .current_dir(&self.spec.workdir)
                    .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .stdin(Stdio::null())
                    .stdout(Stdio::from(log))
                    .stderr(Stdio::from(stderr))
                    .kill_on_drop(true)
                    .spawn()
                    .map_err(io_error(format!("starting {}", program.display())))?;
                Running::Process(child)
            }
            Launch::Container(spec) => {
                let spec = ContainerSpec {
                    env: self.env.clone(),
                    ..spec.clone()
                };
                let container = infra.run_service_container(&spec).await?;
                container
                    .follow_logs(&self.log)
                    .map_err(io_error(format!("opening {}", self.log.display())))?;
                Running::Container(container)
            }
        })
    }

    /// Whether the service has ended by itself, and how; `None` while it runs (or was never
    /// started).
    pub(super) async fn exited(&mut self) -> Option<String> {
        match self.running.as_mut()? {
            Running::Process(child) => match child.try_wait() {
                Ok(Some(status)) => Some(status.to_string()),
                _ => None,
            },
            Running::Container(container) => match container.state().await {
                Ok((false, code)) => Some(format!(
                    "container exited with code {}",
                    code.map_or_else(|| "unknown".to_string(), |c| c.to_string())
                )),
                _ => None,
            },
        }
    }

    /// Stops the service with its stop signal, killing it after its grace period; a
    /// container is removed afterwards.
    pub(super) async fn stop(&mut self) {
        let signal = self.spec.stop_signal;
        match self.running.take() {
            None => {}
            Some(Running::Process(mut child)) => {
                if let Some(pid) = child.id() {
                    // SAFETY: kill(2) with a pid this stack spawned and still holds.
                    unsafe { libc::kill(pid as i32, signal.number) };
                }
                if tokio::time::timeout(self.spec.stop_grace, child.wait())
                    .await
                    .is_err()
                {
                    let _ = child.kill().await;
                }
            }
            Some(Running::Container(container)) => {
                let _ = container.signal(signal.name).await;
                let deadline = Instant::now() + self.spec.stop_grace;
                while Instant::now() < deadline && matches!(container.state().await, Ok((true, _)))
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let _ = container.remove().await;
            }
        }
    }

    pub(super) fn url(&self) -> Option<String> {
        self.port.map(|port| format!("http://127.0.0.1:{port}"))
    }

    pub(super) fn tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub(super) fn failure(&self, message: impl Into<String>) -> StackError {
        StackError::Service {
            service: self.spec.name.clone(),
            message: message.into(),
            log: self.log.display().to_string(),
            tail: self.tail(30),
        }
    }

    /// Waits until the service is ready as its description says; fails early if the process
    /// exits. `log_from` is the log's length when this start began (a log check only looks
    /// at what this start wrote).
    pub(super) async fn await_ready(
        &mut self,
        http: &reqwest::Client,
        log_from: u64,
    ) -> Result<Duration, StackError> {
        let clock = Instant::now();
        let timeout = self.spec.ready_timeout;
        loop {
            let last = match self.check_ready(http, log_from).await {
                Ok(()) => return Ok(clock.elapsed()),
                Err(last) => last,
            };
            if let Some(status) = self.exited().await {
                return Err(self.failure(format!("exited during start-up ({status})")));
            }
            if clock.elapsed() > timeout {
                return Err(
                    self.failure(format!("not ready within {timeout:?}; last check: {last}"))
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(super) async fn check_ready(&self, http: &reqwest::Client, log_from: u64) -> Result<(), String> {
        let address = self.port.map(|port| format!("127.0.0.1:{port}"));
        match (&self.spec.ready, address) {
            (Readiness::Http { path }, Some(address)) => {
                crate::infra::http_ready(http, &format!("http://{address}{path}")).await
            }
            (Readiness::Tcp, Some(address)) => tokio::net::TcpStream::connect(&address)
                .await
                .map(drop)
                .map_err(|e| format!("connecting to {address}: {e}")),
            (Readiness::Log { text }, _) => {
                let written = std::fs::read(&self.log).unwrap_or_default();
                let new = written.get(log_from as usize..).unwrap_or_default();
                if String::from_utf8_lossy(new).contains(text.as_str()) {
                    Ok(())
                } else {
                    Err(format!("its log does not say {text:?} yet"))
                }
            }
            (_, None) => Err("it has no {port} to check".into()),
        }
    }
}

/// Has the kernel kill the child when the process that started it dies, however it dies: a
/// test binary killed by a timeout must not leave services running. (`kill_on_drop` covers
/// the orderly paths.)
pub(super) fn die_with_parent(command: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

pub(super) static SERVICE_BIN_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Makes every later stack of this process run its `{bin:…}` programs from `dir`: what
/// `faultline bench` does with the release build it made. Once per process; a second call
/// gives the folder back.
pub fn use_service_bin_dir(dir: PathBuf) -> Result<(), PathBuf> {
    SERVICE_BIN_DIR.set(dir)
}

/// Where the service binaries are: the folder [`use_service_bin_dir`] set,
/// `FAULTLINE_SERVICE_BIN_DIR`, or the target folder of the running executable (`target/debug`
/// for `target/debug/deps/<test>` and `target/debug/<bin>`).
pub fn service_bin_dir() -> PathBuf {
    if let Some(dir) = SERVICE_BIN_DIR.get() {
        return dir.clone();
    }
    if let Some(dir) = std::env::var_os("FAULTLINE_SERVICE_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().map(Path::to_path_buf).unwrap_or(dir)
    } else {
        dir
    }
}

/// A port that was free a moment ago on 127.0.0.1, for a service or proxy to listen on later.
///
/// Between choosing a port and its listener binding it there are seconds (the infrastructure
/// starts in between), so the port is taken below the kernel's ephemeral range — where
/// outgoing connections (to Postgres, Kafka, the services) get their local ports and would
/// otherwise steal it — and never handed out twice by this process, so stacks started side by
/// side in one test binary do not collide either.
pub(super) fn free_port() -> Result<u16, StackError> {
    use rand::Rng;
    use std::sync::Mutex;
    static HANDED_OUT: Mutex<std::collections::BTreeSet<u16>> =
        Mutex::new(std::collections::BTreeSet::new());
    let ephemeral_from = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_from.max(12_000) - 1);
    let mut rng = rand::rng();
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    for _ in 0..1000 {
        let port = rng.random_range(low..=high);
        if handed_out.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.insert(port);
            return Ok(port);
        }
    }
    // Everything tried is taken: fall back on a port the kernel picks.
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io_error("finding a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io_error("finding a free port"))?
        .port();
    handed_out.insert(port);
    Ok(port)
}
