//! The process's one interrupt handler. SIGINT and SIGTERM are caught once, at start;
//! [`Interrupt::run`] wraps every command, so an interrupt drops the command's work (which
//! removes what it registered) and then removes whatever this process was still creating,
//! by label. A command that stops gracefully by itself — a chaos run heals its faults and
//! saves its history first — asks for [`Interrupt::handled_by_command`] and watches the
//! signal instead.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use faultline_harness::infra;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::error::CliError;

pub struct Interrupt {
    signalled: watch::Receiver<bool>,
    by_command: Arc<AtomicBool>,
}

impl Interrupt {
    /// Catches SIGINT and SIGTERM from now on.
    pub fn install() -> Result<Self, CliError> {
        let mut terminate = signal(SignalKind::terminate())
            .map_err(|e| CliError::CouldNotRun(anyhow::anyhow!("installing a SIGTERM handler: {e}")))?;
        let mut interrupt = signal(SignalKind::interrupt())
            .map_err(|e| CliError::CouldNotRun(anyhow::anyhow!("installing a SIGINT handler: {e}")))?;
        let (tx, signalled) = watch::channel(false);
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            let _ = tx.send(true);
        });
        Ok(Self {
            signalled,
            by_command: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Completes once the process is interrupted.
    pub fn signalled(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut signalled = self.signalled.clone();
        async move {
            let _ = signalled.wait_for(|&stop| stop).await;
        }
    }

    /// The calling command stops by itself when [`Interrupt::signalled`] completes; `run`
    /// then waits for it instead of dropping it.
    pub fn handled_by_command(&self) -> impl Future<Output = ()> + Send + 'static {
        self.by_command.store(true, Ordering::SeqCst);
        self.signalled()
    }

    /// Runs a command until it ends or the process is interrupted.
    pub async fn run(
        &self,
        work: impl Future<Output = Result<(), CliError>>,
    ) -> Result<(), CliError> {
        let mut work = Box::pin(work);
        tokio::select! {
            result = &mut work => return result,
            () = self.signalled() => {}
        }
        if self.by_command.load(Ordering::SeqCst) {
            return work.await;
        }
        // Dropping the command's work removed what it had registered.
        drop(work);
        eprintln!("interrupted: removing this run's containers and network");
        remove_own_resources().await;
        Err(CliError::Interrupted)
    }
}

/// Removes containers and networks this process created that were still being set up.
pub async fn remove_own_resources() {
    if let Err(error) = infra::remove_own_resources().await {
        eprintln!("error: cleanup after interrupt: {error:#} (the next run sweeps them)");
    }
}
