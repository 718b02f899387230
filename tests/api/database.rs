//! The suite against PostgreSQL: with `FOCUSFLOW_TEST_DATABASE_URL` set (see `.ci/postgres.sh`),
//! every application a test starts gets a fresh database of its own on that server, named after
//! its data directory, so a restart on the same directory finds its jobs again. A database is
//! dropped once its directory is gone (the test that made it has ended).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio_postgres::NoTls;

/// The server's URL (of a database that tests may connect to, to create others).
pub fn server_url() -> Option<String> {
    std::env::var("FOCUSFLOW_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
}

pub fn on_postgres() -> bool {
    server_url().is_some()
}

/// True (with the reason printed) when the test cannot run on PostgreSQL and must stop.
pub fn skipped_on_postgres(reason: &str) -> bool {
    if on_postgres() {
        eprintln!("skipped on PostgreSQL: {reason}");
        return true;
    }
    false
}

static DATABASES: Mutex<Option<HashMap<PathBuf, String>>> = Mutex::new(None);
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Points `config` at its data directory's database on PostgreSQL (unless it names one).
pub async fn configure(config: &mut focusflow::config::Config) {
    if config.database_url.is_none()
        && let Some(url) = url_for(&config.data_dir).await
    {
        config.database_url = Some(focusflow::config::DatabaseUrl::parse(&url).unwrap());
    }
}

/// The `DATABASE_URL` of the app whose data directory is `data_dir`; None on SQLite.
pub async fn url_for(data_dir: &Path) -> Option<String> {
    let server = server_url()?;
    let known = DATABASES
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .get(data_dir)
        .cloned();
    let name = match known {
        Some(name) => name,
        None => {
            let name = format!(
                "focusflow_test_{}_{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let gone: Vec<String> = {
                let mut databases = DATABASES.lock().unwrap();
                let databases = databases.get_or_insert_with(HashMap::new);
                let gone: Vec<PathBuf> = databases
                    .keys()
                    .filter(|dir| !dir.exists())
                    .cloned()
                    .collect();
                gone.iter()
                    .filter_map(|dir| databases.remove(dir))
                    .collect()
            };
            let (client, connection) = tokio_postgres::connect(&server, NoTls)
                .await
                .expect("the test PostgreSQL answers (FOCUSFLOW_TEST_DATABASE_URL)");
            let connection = tokio::spawn(connection);
            for old in gone {
                let _ = client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {old} WITH (FORCE)"))
                    .await;
            }
            client
                .batch_execute(&format!(
                    "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'"
                ))
                .await
                .expect("a test database is created");
            drop(client);
            let _ = connection.await;
            DATABASES
                .lock()
                .unwrap()
                .get_or_insert_with(HashMap::new)
                .insert(data_dir.to_path_buf(), name.clone());
            name
        }
    };
    let (base, _) = server.rsplit_once('/').expect("a URL with a database");
    Some(format!("{base}/{name}"))
}
