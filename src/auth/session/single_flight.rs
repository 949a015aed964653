//! Concurrent requests that need the same answer share one piece of work: the first to arrive
//! runs it, the others wait for its result. If the first is dropped (its client went away),
//! one of those waiting runs it instead.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OnceCell;

pub struct SingleFlight<V> {
    /// One cell per key while anyone is working on or waiting for it.
    in_flight: Mutex<HashMap<String, Arc<OnceCell<V>>>>,
}

impl<V: Clone> SingleFlight<V> {
    pub fn new() -> Self {
        Self {
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// `work`'s result, or that of the request already running it for `key`.
    pub async fn run(&self, key: &str, work: impl Future<Output = V>) -> V {
        let slot = Slot::join(self, key);
        let cell = slot.cell.as_ref().expect("held until the slot drops");
        cell.get_or_init(|| work).await.clone()
    }

    /// Keys with work in flight.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<OnceCell<V>>>> {
        // The map stays consistent whatever a panicking holder was doing.
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// One request's share of a key's cell; the last one to leave removes the cell, finished or
/// not, so the map holds only keys that someone is still working on.
struct Slot<'a, V: Clone> {
    flights: &'a SingleFlight<V>,
    key: &'a str,
    cell: Option<Arc<OnceCell<V>>>,
}

impl<'a, V: Clone> Slot<'a, V> {
    fn join(flights: &'a SingleFlight<V>, key: &'a str) -> Self {
        let cell = flights.lock().entry(key.to_owned()).or_default().clone();
        Self {
            flights,
            key,
            cell: Some(cell),
        }
    }
}

impl<V: Clone> Drop for Slot<'_, V> {
    fn drop(&mut self) {
        // Every clone and drop of a cell happens under the lock, so the count is exact.
        let mut in_flight = self.flights.lock();
        let cell = self.cell.take().expect("taken only here");
        let last = Arc::strong_count(&cell) == 2
            && in_flight
                .get(self.key)
                .is_some_and(|held| Arc::ptr_eq(held, &cell));
        if last {
            in_flight.remove(self.key);
        }
        drop(cell);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn concurrent_callers_share_one_run_and_leave_nothing_behind() {
        let flights = Arc::new(SingleFlight::<usize>::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let (release, released) = tokio::sync::watch::channel(false);
        let callers: Vec<_> = (0..5)
            .map(|_| {
                let (flights, runs, mut released) =
                    (flights.clone(), runs.clone(), released.clone());
                tokio::spawn(async move {
                    flights
                        .run("ada", async move {
                            let _ = released.wait_for(|open| *open).await;
                            runs.fetch_add(1, Ordering::SeqCst) + 41
                        })
                        .await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(flights.len(), 1);
        release.send_replace(true);
        for caller in callers {
            assert_eq!(caller.await.unwrap(), 41);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(flights.len(), 0);
        assert_eq!(flights.run("ada", async { 7 }).await, 7, "a new run");
    }

    #[tokio::test]
    async fn a_dropped_leader_hands_the_work_to_a_waiter() {
        let flights = Arc::new(SingleFlight::<&str>::new());
        let leader = {
            let flights = flights.clone();
            tokio::spawn(async move { flights.run("ada", std::future::pending()).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let waiter = {
            let flights = flights.clone();
            tokio::spawn(async move { flights.run("ada", async { "waiter's" }).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        leader.abort();
        assert_eq!(waiter.await.unwrap(), "waiter's");
        assert_eq!(flights.len(), 0);
    }
}
