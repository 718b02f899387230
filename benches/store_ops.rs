//! A driver for counting instructions (valgrind's callgrind) of the store's hot writes, so the
//! "append and status update stay flat from 100 to 100,000 jobs" claim can be checked without
//! a quiet machine. `scripts/store-callgrind.sh` runs it; by hand:
//!
//! ```text
//! STORE_OPS_DIR=/tmp/s100 STORE_OPS_SEED=100 cargo bench --bench store_ops      # seed once
//! STORE_OPS_DIR=/tmp/s100 STORE_OPS_OPERATION=append STORE_OPS_COUNT=1000 \
//!     valgrind --tool=callgrind target/release/deps/store_ops-…                  # measure
//! ```
//!
//! With `STORE_OPS_SEED=n` it creates a store holding `n` jobs (each with its "Job created"
//! line) in `STORE_OPS_DIR`. Otherwise it opens the store there and does `STORE_OPS_COUNT`
//! operations (`append`: a log line; `status`: a status and checkpoint update, as the worker
//! does them) on the job in the middle of the list. Running it with count 0 and count N and
//! subtracting gives the cost of N operations without the cost of opening the store.

use std::path::PathBuf;

use focusflow::jobs::{Stage, Status};
use focusflow::store::{Changes, NewJob, Store};

fn main() {
    let dir = PathBuf::from(std::env::var("STORE_OPS_DIR").expect("STORE_OPS_DIR"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&dir).unwrap();
        if let Ok(size) = std::env::var("STORE_OPS_SEED") {
            let size: usize = size.parse().expect("STORE_OPS_SEED is a number");
            let have = store.count_jobs().await.unwrap() as usize;
            for n in have..size {
                store
                    .create_job(NewJob {
                        url: format!("https://example.com/{n}.mp3"),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
            }
            println!("seeded {} jobs in {}", size, dir.display());
            return;
        }
        let operation = std::env::var("STORE_OPS_OPERATION").unwrap_or_else(|_| "append".into());
        let count: usize = std::env::var("STORE_OPS_COUNT")
            .ok()
            .and_then(|count| count.parse().ok())
            .unwrap_or(1000);
        let size = store.count_jobs().await.unwrap() as usize;
        let id = store.list_jobs(1, size / 2).await.unwrap().remove(0).id;
        for n in 0..count {
            match operation.as_str() {
                "append" => {
                    store
                        .append_log(&id, format!("progress line {n}"))
                        .await
                        .unwrap();
                }
                "status" => {
                    let status = if n % 2 == 0 {
                        Status::Transcribing
                    } else {
                        Status::Summarizing
                    };
                    store
                        .update(
                            &id,
                            Changes::new()
                                .status(status)
                                .checkpoint(Some(Stage::Download)),
                        )
                        .await
                        .unwrap();
                }
                other => panic!("unknown STORE_OPS_OPERATION {other:?} (append or status)"),
            }
        }
        println!("{operation} x{count} on a store of {size} jobs");
    });
}
