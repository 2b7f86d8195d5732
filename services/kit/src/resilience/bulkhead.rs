//! Bulkhead: a bound on how many calls to one dependency may be in flight at once, so a slow
//! dependency ties up at most that many of the caller's tasks and connections.
//!
//! A call that finds every slot taken is rejected at once with [`BulkheadFull`] (or, with a
//! `max_wait`, after waiting that long for a slot). Rejection is fast on purpose: queueing
//! behind a stuck dependency is how one bad link drags a whole service down.
//!
//! Metrics: `faultline_bulkhead_available{dependency}` (free slots, a gauge) and
//! `faultline_bulkhead_rejected_total{dependency}`.
//!
//! ```
//! use faultline_kit::resilience::bulkhead::Bulkhead;
//! # async fn demo() {
//! let bulkhead = Bulkhead::new("inventory", 2);
//! let slot = bulkhead.try_enter().await.expect("a slot is free");
//! // ... make the call while holding `slot` ...
//! drop(slot);
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bounded concurrency for calls to one dependency. Cloning shares the slots.
#[derive(Debug, Clone)]
pub struct Bulkhead {
    dependency: Arc<str>,
    slots: Arc<Semaphore>,
    capacity: usize,
    max_wait: Duration,
}

/// Every slot was taken (and stayed taken for the whole `max_wait`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bulkhead for `{dependency}` is full: {capacity} concurrent calls already in flight")]
pub struct BulkheadFull {
    /// Whose bulkhead refused.
    pub dependency: String,
    /// How many concurrent calls it allows.
    pub capacity: usize,
}

impl Bulkhead {
    /// A bulkhead allowing `max_concurrent` calls to `dependency`, rejecting without waiting.
    ///
    /// # Panics
    /// When `max_concurrent` is 0 or above [`Semaphore::MAX_PERMITS`].
    pub fn new(dependency: impl Into<String>, max_concurrent: usize) -> Self {
        assert!(
            (1..=Semaphore::MAX_PERMITS).contains(&max_concurrent),
            "a bulkhead needs between 1 and {} slots, got {max_concurrent}",
            Semaphore::MAX_PERMITS
        );
        let bulkhead = Self {
            dependency: Arc::from(dependency.into()),
            slots: Arc::new(Semaphore::new(max_concurrent)),
            capacity: max_concurrent,
            max_wait: Duration::ZERO,
        };
        bulkhead.publish_available();
        bulkhead
    }

    /// Lets a call wait up to `max_wait` for a free slot before it is rejected.
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// The dependency this bulkhead guards.
    pub fn dependency(&self) -> &str {
        &self.dependency
    }

    /// How many concurrent calls it allows.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many slots are free now.
    pub fn available(&self) -> usize {
        self.slots.available_permits()
    }

    /// Takes a slot, held until the returned [`BulkheadSlot`] is dropped.
    pub async fn try_enter(&self) -> Result<BulkheadSlot, BulkheadFull> {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) if self.max_wait.is_zero() => None,
            Err(_) => tokio::time::timeout(self.max_wait, self.slots.clone().acquire_owned())
                .await
                .ok()
                .and_then(Result::ok),
        };
        match permit {
            Some(permit) => {
                self.publish_available();
                Ok(BulkheadSlot {
                    permit: Some(permit),
                    bulkhead: self.clone(),
                })
            }
            None => {
                metrics::counter!("faultline_bulkhead_rejected_total", "dependency" => self.dependency.to_string())
                    .increment(1);
                Err(BulkheadFull {
                    dependency: self.dependency.to_string(),
                    capacity: self.capacity,
                })
            }
        }
    }

    fn publish_available(&self) {
        metrics::gauge!("faultline_bulkhead_available", "dependency" => self.dependency.to_string())
            .set(self.slots.available_permits() as f64);
    }
}

/// One occupied bulkhead slot; dropping it frees the slot.
#[derive(Debug)]
pub struct BulkheadSlot {
    permit: Option<OwnedSemaphorePermit>,
    bulkhead: Bulkhead,
}

impl Drop for BulkheadSlot {
    fn drop(&mut self) {
        drop(self.permit.take());
        self.bulkhead.publish_available();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn a_call_beyond_capacity_is_rejected_at_once_while_others_hold_slots() {
        let bulkhead = Bulkhead::new("inventory", 2);
        let mut holders = Vec::new();
        let mut releases = Vec::new();
        for _ in 0..2 {
            let (entered_tx, entered_rx) = oneshot::channel();
            let (release_tx, release_rx) = oneshot::channel::<()>();
            let bulkhead = bulkhead.clone();
            holders.push(tokio::spawn(async move {
                let _slot = bulkhead.try_enter().await.expect("a free slot");
                entered_tx.send(()).unwrap();
                release_rx.await.unwrap();
            }));
            entered_rx.await.unwrap();
            releases.push(release_tx);
        }
        assert_eq!(bulkhead.available(), 0);
        let rejected = bulkhead.try_enter().await.unwrap_err();
        assert_eq!(
            rejected,
            BulkheadFull {
                dependency: "inventory".into(),
                capacity: 2
            }
        );

        releases.pop().unwrap().send(()).unwrap();
        holders.pop().unwrap().await.unwrap();
        assert_eq!(bulkhead.available(), 1);
        let _third = bulkhead.try_enter().await.expect("a slot was freed");
        releases.pop().unwrap().send(()).unwrap();
        holders.pop().unwrap().await.unwrap();
    }

    #[tokio::test]
    async fn with_max_wait_a_call_gets_a_slot_freed_in_time_and_is_rejected_otherwise() {
        let impatient = Bulkhead::new("inventory", 1).with_max_wait(Duration::from_millis(20));
        let held = impatient.try_enter().await.unwrap();
        assert!(
            impatient.try_enter().await.is_err(),
            "nothing freed within 20 ms"
        );
        drop(held);

        let patient = Bulkhead::new("inventory", 1).with_max_wait(Duration::from_secs(10));
        let held = patient.try_enter().await.unwrap();
        let waiter = {
            let patient = patient.clone();
            tokio::spawn(async move { patient.try_enter().await.map(drop) })
        };
        drop(held);
        waiter.await.unwrap().expect("the slot freed while waiting");
    }

    #[test]
    #[should_panic(expected = "between 1 and")]
    fn a_bulkhead_without_slots_is_refused() {
        Bulkhead::new("inventory", 0);
    }
}
