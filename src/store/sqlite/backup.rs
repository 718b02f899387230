//! A consistent copy of the database file, safe while a server writes to it.
//!
//! SQLite's online backup API copies every page in one step, inside one read transaction, so
//! the copy is the database as it was at one instant (WAL lets the server keep writing).

use std::path::Path;
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::store::{StoreError, StoreResult};

/// Tries while a checkpoint holds the file: 600 times 50 ms.
const BUSY_TRIES: u32 = 600;
const BUSY_PAUSE: Duration = Duration::from_millis(50);

/// Copies the database at `source` into a new file `destination`; returns how many jobs the
/// copy holds.
pub fn copy_database(source: &Path, destination: &Path) -> StoreResult<u64> {
    let source = Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    source.busy_timeout(Duration::from_secs(30))?;
    let mut copy = Connection::open(destination)?;
    {
        let backup = Backup::new(&source, &mut copy)?;
        // -1: every page in one step, so the copy is one consistent snapshot. Busy or locked
        // only while a checkpoint holds the file; wait a moment and try again.
        let mut tries = 0;
        loop {
            match backup.step(-1)? {
                StepResult::Done => break,
                StepResult::More | StepResult::Busy | StepResult::Locked if tries < BUSY_TRIES => {
                    tries += 1;
                    std::thread::sleep(BUSY_PAUSE);
                }
                _ => {
                    return Err(StoreError::Unavailable(
                        "the database stayed busy for 30 s".into(),
                    ));
                }
            }
        }
    }
    // Nobody works on the copy's jobs: whoever starts a server on it takes them at once, from
    // their checkpoints (a database from before leases has nothing to clear).
    let leased: i64 = copy.query_row(
        "SELECT COUNT(*) FROM pragma_table_info('jobs') WHERE name = 'lease_owner'",
        [],
        |row| row.get(0),
    )?;
    if leased > 0 {
        copy.execute(
            "UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL",
            [],
        )?;
    }
    // A backup is one file: fold the copy's journal into it.
    copy.pragma_update(None, "journal_mode", "DELETE")?;
    let jobs: i64 = copy.query_row("SELECT COUNT(*) FROM jobs", [], |row| row.get(0))?;
    Ok(jobs as u64)
}
