//! Keeping a job's lease while a worker runs it: renewed every third of its length, and the
//! job's work stopped once the lease is lost or cannot be confirmed before it runs out — so by
//! the time another process may take the job over, this one has stopped working on it.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::jobs::JobId;
use crate::store::{LeaseOwner, Store};

/// Renews `owner`'s lease on the job until `work` is cancelled; cancels `work` when the lease
/// is someone else's now, or when it would run out before the next renewal could confirm it.
pub async fn keep(
    store: Store,
    id: JobId,
    owner: LeaseOwner,
    lease: Duration,
    work: CancellationToken,
) {
    let every = lease / 3;
    // The claim has just written the lease.
    let mut held_until = Instant::now() + lease;
    loop {
        tokio::select! {
            _ = work.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let asked = Instant::now();
        let answer = tokio::time::timeout(
            held_until.saturating_duration_since(asked),
            store.renew_lease(&id, &owner, lease),
        )
        .await;
        match answer {
            Ok(Ok(true)) => held_until = asked + lease,
            Ok(Ok(false)) => {
                tracing::warn!(job = %id, "the job's lease is no longer this worker's (taken over or deleted); stopping its work");
                work.cancel();
                return;
            }
            Ok(Err(error)) if Instant::now() + every < held_until => {
                tracing::warn!(job = %id, %error, "could not renew the job's lease; trying again");
            }
            Ok(Err(error)) => {
                tracing::error!(job = %id, %error, "could not renew the job's lease before it runs out; stopping its work so another process can take it over");
                work.cancel();
                return;
            }
            Err(_) => {
                tracing::error!(job = %id, "the job's lease ran out while its renewal waited on the store; stopping its work so another process can take it over");
                work.cancel();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewJob;

    #[tokio::test]
    async fn a_lease_taken_over_stops_the_work_and_a_held_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_job(NewJob::default()).await.unwrap();
        let first = LeaseOwner::generate();
        let lease = Duration::from_millis(300);
        let claimed = store.claim_next(&first, lease).await.unwrap().unwrap();
        let id = claimed.job.id.clone();

        // Renewed: after several lease lengths the work still runs and the lease is live.
        let work = CancellationToken::new();
        let keeper = tokio::spawn(keep(
            store.clone(),
            id.clone(),
            first.clone(),
            lease,
            work.clone(),
        ));
        tokio::time::sleep(lease * 4).await;
        assert!(!work.is_cancelled());
        assert!(store.leased_jobs().await.unwrap().contains(&id));
        work.cancel();
        keeper.await.unwrap();

        // Not renewed any more: another worker takes it over once it runs out, and the first
        // one's keeper, started again, finds it gone and stops the work.
        tokio::time::sleep(lease + Duration::from_millis(50)).await;
        let second = LeaseOwner::generate();
        let taken = store.claim_next(&second, lease).await.unwrap().unwrap();
        assert_eq!(taken.job.id, id);
        assert!(taken.taken_over);
        let work = CancellationToken::new();
        tokio::time::timeout(
            lease * 2,
            keep(store.clone(), id, first, lease, work.clone()),
        )
        .await
        .expect("the keeper stops");
        assert!(work.is_cancelled());
    }
}
