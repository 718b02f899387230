//! The suite against an S3-compatible server: with `FOCUSFLOW_TEST_STORAGE_URL` set (see
//! `.ci/s3.sh`, which also exports `AWS_ENDPOINT_URL` and the credentials), every application a
//! test starts keeps its artifacts under a prefix of its own in that bucket, named after its
//! data directory, so a restart on the same directory finds its objects again and tests never
//! see each other's.

use std::hash::{Hash, Hasher};
use std::path::Path;

use focusflow::config::{Config, StorageUrl};
use focusflow::storage::Bucket;

/// The variables `.ci/s3.sh` exports that the server reads.
const AWS_VARIABLES: [&str; 4] = [
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
];

/// The test bucket and run prefix, with the endpoint and credentials of this process's
/// environment.
pub fn base() -> Option<StorageUrl> {
    let value = std::env::var("FOCUSFLOW_TEST_STORAGE_URL")
        .ok()
        .filter(|value| !value.trim().is_empty())?;
    Some(
        StorageUrl::parse(&value, &|name| std::env::var(name).ok())
            .expect("FOCUSFLOW_TEST_STORAGE_URL and the AWS_* variables are valid"),
    )
}

pub fn on_s3() -> bool {
    base().is_some()
}

/// True (with the reason printed) when the test needs the test S3 server and it is not set.
pub fn skipped_without_s3(test: &str) -> bool {
    if on_s3() {
        return false;
    }
    eprintln!(
        "skipped: {test} needs FOCUSFLOW_TEST_STORAGE_URL (eval \"$(bash .ci/s3.sh start)\")"
    );
    true
}

/// True (with the reason printed) when the test reads or seeds artifact files in the data
/// directory itself, which a bucket does not have.
pub fn skipped_on_s3(reason: &str) -> bool {
    if on_s3() {
        eprintln!("skipped on S3: {reason}");
        return true;
    }
    false
}

/// The storage of the app whose data directory is `data_dir`; None without the test server.
pub fn url_for(data_dir: &Path) -> Option<StorageUrl> {
    let base = base()?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    data_dir.hash(&mut hasher);
    let app = format!("app-{:016x}", hasher.finish());
    let prefix = if base.prefix.is_empty() {
        app
    } else {
        format!("{}/{app}", base.prefix)
    };
    Some(base.with_prefix(&prefix))
}

/// Points `config` at its data directory's prefix in the test bucket (unless it names one).
pub fn configure(config: &mut Config) {
    if config.storage_url.is_none() {
        config.storage_url = url_for(&config.data_dir);
    }
}

/// `STORAGE_URL` and the `AWS_*` variables for a server process on `data_dir`.
pub fn env_for(data_dir: &Path) -> Vec<(&'static str, String)> {
    let Some(url) = url_for(data_dir) else {
        return Vec::new();
    };
    let mut env = vec![("STORAGE_URL", format!("s3://{}/{}", url.bucket, url.prefix))];
    for name in AWS_VARIABLES {
        if let Ok(value) = std::env::var(name) {
            env.push((name, value));
        }
    }
    env
}

/// A client of the app's bucket, to look at the objects themselves.
pub fn bucket_of(config: &Config) -> Bucket {
    Bucket::connect(
        config
            .storage_url
            .as_ref()
            .expect("the app stores in a bucket"),
    )
    .expect("the test bucket's client builds")
}

/// Runs `work` on a runtime of its own in another thread: the helpers below are called from
/// synchronous test code inside `#[tokio::test]` (a current-thread runtime cannot block).
fn blocking<T: Send + 'static>(work: impl std::future::Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(work)
    })
    .join()
    .unwrap()
}

/// The names of the objects in `folder` (`files`, `transcripts`, `summaries`) of the app on
/// `data_dir`; empty without the test server.
pub fn objects_in(data_dir: &Path, folder: &str) -> Vec<String> {
    let Some(url) = url_for(data_dir) else {
        return Vec::new();
    };
    let folder = format!("{folder}/");
    blocking(async move {
        let bucket = Bucket::connect(&url).unwrap();
        bucket
            .list_all()
            .await
            .unwrap()
            .into_iter()
            .filter_map(|(relative, _)| relative.strip_prefix(&folder).map(str::to_string))
            .collect()
    })
}

/// An artifact of the app on `data_dir`, from its bucket or its data folder (a test fails
/// when it is in neither).
pub fn read_artifact(data_dir: &Path, relative: &str) -> Vec<u8> {
    let Some(url) = url_for(data_dir) else {
        return std::fs::read(data_dir.join(relative))
            .unwrap_or_else(|error| panic!("{relative}: {error}"));
    };
    let relative = relative.to_string();
    blocking(async move {
        use futures_util::StreamExt;
        let bucket = Bucket::connect(&url).unwrap();
        let mut body = bucket
            .read(&relative, None)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{relative} is not in the bucket"));
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            bytes.extend_from_slice(&chunk.unwrap());
        }
        bytes
    })
}

/// [`read_artifact`] as text.
pub fn read_artifact_text(data_dir: &Path, relative: &str) -> String {
    String::from_utf8(read_artifact(data_dir, relative)).unwrap()
}
