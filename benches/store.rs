//! Store benchmarks: the cost of the operations the worker and the pages do all the time, with
//! 100, 10,000 and 100,000 jobs in the store. Run: `cargo bench --bench store`
//! (`STORE_BENCH_SIZES=100,100000` to choose the sizes).
//!
//! Each figure is the median of several samples of many operations on a real SQLite file.

use std::time::{Duration, Instant};

use focusflow::jobs::{Stage, Status};
use focusflow::store::{Changes, NewJob, Store};

const SAMPLES: usize = 7;
const OPERATIONS: usize = 300;

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

async fn seed(store: &Store, target: usize) {
    let have = store.count_jobs().await.unwrap() as usize;
    let mut pending = Vec::new();
    for n in have..target {
        let store = store.clone();
        pending.push(tokio::spawn(async move {
            store
                .create_job(NewJob {
                    url: format!("https://example.com/{n}.mp3"),
                    meeting_date: None,
                    ..Default::default()
                })
                .await
                .unwrap();
        }));
        if pending.len() == 256 {
            for task in pending.drain(..) {
                task.await.unwrap();
            }
        }
    }
    for task in pending {
        task.await.unwrap();
    }
}

async fn time_each<F, Fut>(mut operation: F) -> Duration
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut samples = Vec::new();
    for sample in 0..SAMPLES {
        let started = Instant::now();
        for n in 0..OPERATIONS {
            operation(sample * OPERATIONS + n).await;
        }
        samples.push(started.elapsed() / OPERATIONS as u32);
    }
    median(samples)
}

fn main() {
    let sizes: Vec<usize> = std::env::var("STORE_BENCH_SIZES")
        .unwrap_or_else(|_| "100,10000,100000".into())
        .split(',')
        .filter_map(|size| size.trim().parse().ok())
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        println!("| jobs in store | append log line | update status | create job | list page (50) | read job + logs |");
        println!("|---:|---:|---:|---:|---:|---:|");
        let mut first: Option<(Duration, Duration)> = None;
        let mut last = None;
        for size in sizes {
            let seeding = Instant::now();
            seed(&store, size).await;
            let seeded_in = seeding.elapsed();
            let probe = store.list_jobs(1, size / 2).await.unwrap().remove(0);
            let id = probe.id.clone();

            let append = time_each(|n| {
                let store = store.clone();
                let id = id.clone();
                async move {
                    store.append_log(&id, format!("progress line {n}")).await.unwrap();
                }
            })
            .await;
            let status = time_each(|n| {
                let store = store.clone();
                let id = id.clone();
                async move {
                    let status = if n % 2 == 0 { Status::Transcribing } else { Status::Summarizing };
                    store
                        .update(&id, Changes::new().status(status).checkpoint(Some(Stage::Download)))
                        .await
                        .unwrap();
                }
            })
            .await;
            let list = time_each(|n| {
                let store = store.clone();
                async move {
                    let page = store.list_jobs(50, (n * 50) % size.max(1)).await.unwrap();
                    assert!(!page.is_empty() || size == 0);
                }
            })
            .await;
            let read = time_each(|_| {
                let store = store.clone();
                let id = id.clone();
                async move {
                    store.job_with_logs(&id).await.unwrap();
                }
            })
            .await;
            // Creating adds to the store; measure it last, on few operations.
            let create = {
                let started = Instant::now();
                for n in 0..OPERATIONS {
                    store
                        .create_job(NewJob {
                            url: format!("https://example.com/extra/{size}/{n}.mp3"),
                            meeting_date: None,
                            ..Default::default()
                        })
                        .await
                        .unwrap();
                }
                started.elapsed() / OPERATIONS as u32
            };
            println!(
                "| {size} | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} µs |",
                append.as_secs_f64() * 1e6,
                status.as_secs_f64() * 1e6,
                create.as_secs_f64() * 1e6,
                list.as_secs_f64() * 1e6,
                read.as_secs_f64() * 1e6,
            );
            eprintln!("(seeded to {size} jobs in {seeded_in:.1?})");
            first.get_or_insert((append, status));
            last = Some((append, status));
        }
        if let (Some((append_small, status_small)), Some((append_large, status_large))) = (first, last) {
            println!();
            println!(
                "append ratio largest/smallest: {:.2}; status-update ratio: {:.2}",
                append_large.as_secs_f64() / append_small.as_secs_f64(),
                status_large.as_secs_f64() / status_small.as_secs_f64()
            );
        }
    });
}
