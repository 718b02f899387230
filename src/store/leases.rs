//! Leases: a worker's claim on a job. A worker claims a job with a lease, renews it while it
//! works, and writes the job's stage results only while the lease is still in its name. A
//! lease that ran out is taken over by any process at its next claim; from then on the old
//! holder's writes are refused (`Conflict`), so a stage never records its work twice.

use std::time::Duration;

use crate::jobs::Job;

/// Who holds a lease: one per running application (a process, or each of several in a test).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseOwner(String);

impl LeaseOwner {
    /// A fresh owner: the process id, for people reading the database, and a random part,
    /// since process ids repeat across containers and restarts.
    pub fn generate() -> Self {
        let random = uuid::Uuid::new_v4().simple().to_string();
        Self(format!("{}-{}", std::process::id(), &random[..12]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for LeaseOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an update does to the job's lease.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LeaseChange {
    #[default]
    Keep,
    /// The job is held by `owner` for `duration` from the write (nobody else may claim it).
    Hold {
        owner: LeaseOwner,
        duration: Duration,
    },
    /// Nobody holds the job.
    Release,
}

/// A job a worker has just claimed.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub job: Job,
    /// It was mid-stage under a lease that ran out: its last worker stopped without finishing.
    pub taken_over: bool,
}

/// The message of the `Conflict` a writer gets once another worker has taken its job over.
pub const LEASE_LOST: &str = "another worker has taken the job over (this one's lease ran out)";
