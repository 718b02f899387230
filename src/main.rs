//! Start-up: configuration, tracing, the application, and a graceful stop on SIGTERM or Ctrl-C.
//!
//! `focusflow` serves; `focusflow healthcheck` probes a running server (for container health
//! checks, which have neither curl nor node).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use focusflow::Application;
use focusflow::config::Config;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let command = std::env::args().nth(1);
    match command.as_deref() {
        None | Some("serve") => serve(),
        Some("healthcheck") => healthcheck(),
        Some("backup") => backup(std::env::args().nth(2)),
        Some("migrate") => migrate(std::env::args().skip(2).collect()),
        Some("--version" | "-V") => {
            println!("focusflow {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("--help" | "-h" | "help") => {
            println!(
                "focusflow {}\n\nUSAGE:\n  focusflow [serve]     run the server (configured by environment variables and .env)\n  focusflow healthcheck probe http://127.0.0.1:$PORT/api/health; exit 0 when healthy\n  focusflow backup DIR  copy the database and files of DATA_DIR into the new folder DIR\n                        (consistent, safe while the server runs)\n  focusflow migrate --to DATABASE_URL [--storage STORAGE_URL]\n                        copy DATA_DIR (jobs, logs, files) into PostgreSQL and the bucket;\n                        safe to run again (nothing is copied twice)\n",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("focusflow: unknown command {other:?}; try --help");
            ExitCode::from(2)
        }
    }
}

/// `.env`, then the configuration from the environment; on a failure, the message is printed
/// and the exit code (2) is returned for the command to end with.
fn load_config() -> Result<Config, ExitCode> {
    if let Err(message) = load_dotenv() {
        eprintln!("{message}");
        return Err(ExitCode::from(2));
    }
    Config::from_env().map_err(|error| {
        eprintln!("focusflow: {error}");
        ExitCode::from(2)
    })
}

fn load_dotenv() -> Result<(), String> {
    match dotenvy::dotenv() {
        Ok(_) => Ok(()),
        Err(error) if error.not_found() => Ok(()),
        Err(error) => Err(format!("focusflow: could not read .env: {error}")),
    }
}

/// Threads for blocking work (the default is 512).
const MAX_BLOCKING_THREADS: usize = 32;

/// glibc gives threads their own heaps ("arenas"), up to eight per core, and memory freed in
/// one is not reused by another: with the blocking pool's threads each reading listings, the
/// heaps grew apart and the RSS with them. Two arenas (one per core of the small machines this
/// runs on) keep the heap compact; the measurements are in docs/benchmarks.md. The same as
/// `MALLOC_ARENA_MAX=2`, which still wins when set.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

fn serve() -> ExitCode {
    limit_malloc_arenas();
    let config = match load_config() {
        Ok(config) => config,
        Err(code) => return code,
    };
    if let Err(error) = focusflow::telemetry::init(config.log_format, &config.rust_log) {
        eprintln!("focusflow: {error}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Database and file work runs here: five SQLite connections serve it, so more threads
        // than this only wait on them, each with a stack and a heap of its own.
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("focusflow: could not start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let app = Application::build(config).await?;
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        app.run_until_stopped(shutdown).await
    });
    // Blocking tasks (file and database work) get a moment to finish, never longer.
    runtime.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("focusflow: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C received"),
        _ = terminate => tracing::info!("SIGTERM received"),
    }
    shutdown.cancel();
}

/// Writes a consistent snapshot of `DATA_DIR` into a new folder.
fn backup(target: Option<String>) -> ExitCode {
    let Some(target) = target else {
        eprintln!("usage: focusflow backup DIR");
        return ExitCode::from(2);
    };
    let config = match load_config() {
        Ok(config) => config,
        Err(code) => return code,
    };
    let files = match &config.storage_url {
        Some(storage) => format!(
            "copy the bucket with its own tools (for example aws s3 sync s3://{}/{} ./focusflow-objects, or rclone sync)",
            storage.bucket, storage.prefix
        ),
        None => "copy DATA_DIR's files/, transcripts/ and summaries/ with your file backup".into(),
    };
    if let Some(url) = &config.database_url {
        eprintln!(
            "focusflow backup: the jobs are in PostgreSQL ({}), which this command does not copy; \
             back it up with pg_dump (pg_dump --format=custom --file=focusflow.dump \"$DATABASE_URL\") \
             and {files}",
            url.shown()
        );
        return ExitCode::from(2);
    }
    if config.storage_url.is_some() {
        eprintln!(
            "focusflow backup: the recordings, transcripts and summaries are in a bucket, which this \
             command does not copy; stop the server, copy DATA_DIR/focusflow.db, and {files}"
        );
        return ExitCode::from(2);
    }
    match focusflow::store::backup::backup(&config.data_dir, std::path::Path::new(&target)) {
        Ok(report) => {
            println!(
                "backed up {} jobs and {} files ({} bytes) from {} to {}",
                report.jobs,
                report.files,
                report.bytes,
                config.data_dir.display(),
                target
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("focusflow backup: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `focusflow migrate --to postgres://… [--storage s3://…]`: copies the SQLite store and files
/// of `DATA_DIR` into PostgreSQL (and the bucket), and says what it copied.
fn migrate(args: Vec<String>) -> ExitCode {
    let (to, storage) = match migrate_arguments(args) {
        Ok(arguments) => arguments,
        Err(code) => return code,
    };
    let config = match load_config() {
        Ok(config) => config,
        Err(code) => return code,
    };
    let target = match migration_target(&config, &to, storage) {
        Ok(target) => target,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("focusflow: could not start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(copy_install(config.data_dir.clone(), target));
    runtime.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("focusflow migrate: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The `--to` and optional `--storage` of `focusflow migrate` (each as `--name value` or
/// `--name=value`); anything else is a usage error (exit 2).
fn migrate_arguments(args: Vec<String>) -> Result<(String, Option<String>), ExitCode> {
    const USAGE: &str = "usage: focusflow migrate --to DATABASE_URL [--storage STORAGE_URL]";
    let mut to = None;
    let mut storage = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_string(), Some(value.to_string())),
            None => (arg.clone(), None),
        };
        let value = inline.or_else(|| args.next());
        match (name.as_str(), value) {
            ("--to", Some(value)) => to = Some(value),
            ("--storage", Some(value)) => storage = Some(value),
            _ => {
                eprintln!("focusflow migrate: unexpected {arg:?}\n{USAGE}");
                return Err(ExitCode::from(2));
            }
        }
    }
    let Some(to) = to else {
        eprintln!("{USAGE}");
        return Err(ExitCode::from(2));
    };
    Ok((to, storage))
}

/// The install's configuration pointed at the destination: `--to` as its database and
/// `--storage` (if given) as its file storage. A URL that does not parse is a usage error.
fn migration_target(
    config: &Config,
    to: &str,
    storage: Option<String>,
) -> Result<Config, ExitCode> {
    let mut target = config.clone();
    target.database_url = match focusflow::config::DatabaseUrl::parse(to) {
        Ok(url) => Some(url),
        Err(error) => {
            eprintln!("focusflow migrate: --to {}", error.message);
            return Err(ExitCode::from(2));
        }
    };
    target.storage_url = match storage
        .map(|url| focusflow::config::StorageUrl::parse(&url, &|name| std::env::var(name).ok()))
        .transpose()
    {
        Ok(url) => url,
        Err(error) => {
            eprintln!("focusflow migrate: --storage {}", error.message);
            return Err(ExitCode::from(2));
        }
    };
    Ok(target)
}

/// Opens the SQLite store in `data_dir` and the destination, copies one into the other
/// (printing progress) and prints what was copied.
async fn copy_install(data_dir: std::path::PathBuf, target: Config) -> Result<(), String> {
    if !data_dir.join("focusflow.db").is_file() {
        return Err(format!(
            "there is no FocusFlow database in DATA_DIR ({}); set DATA_DIR to the install to copy",
            data_dir.display()
        ));
    }
    let source = focusflow::store::Store::open(&data_dir).map_err(|error| {
        format!(
            "could not open the store in {}: {error}",
            data_dir.display()
        )
    })?;
    let database = target
        .database_url
        .as_ref()
        .map(|url| url.shown())
        .unwrap_or_default();
    let destination = focusflow::store::Store::connect(&target)
        .await
        .map_err(|error| format!("could not open PostgreSQL ({database}): {error}"))?;
    let report =
        focusflow::store::migrate::migrate(&source, &destination, |line| println!("{line}"))
            .await
            .map_err(|error| error.to_string())?;
    print_migration_report(&report, &database, &target, &data_dir);
    Ok(())
}

/// What `focusflow migrate` copied, what it found already there and what it left behind.
fn print_migration_report(
    report: &focusflow::store::migrate::MigrationReport,
    database: &str,
    target: &Config,
    data_dir: &std::path::Path,
) {
    println!(
        "jobs: {} copied ({} log lines), {} already in {database}",
        report.jobs_copied, report.log_lines, report.jobs_present
    );
    match &target.storage_url {
        Some(url) => println!(
            "objects: {} copied ({} bytes), {} already in {}",
            report.objects_copied,
            report.bytes_copied,
            report.objects_present,
            url.shown()
        ),
        None => println!(
            "files: left in {} (no --storage): start the new servers with this DATA_DIR",
            data_dir.display()
        ),
    }
    if report.files_missing > 0 {
        println!(
            "warning: {} files that jobs name are not in DATA_DIR; those jobs were copied without them",
            report.files_missing
        );
    }
    if report.deliveries_pending > 0 {
        println!(
            "note: {} webhook deliveries were still waiting and were not copied (the old server sends them if it runs again)",
            report.deliveries_pending
        );
    }
}

/// Exit 0 when `/api/health` on this machine answers 200, else 1. Plain HTTP/1.1 over a socket,
/// so the container image needs no curl.
fn healthcheck() -> ExitCode {
    let _ = load_dotenv();
    let port = std::env::var("PORT")
        .ok()
        .filter(|value| !value.trim().is_empty())
        .map(|value| value.trim().parse::<u16>())
        .unwrap_or(Ok(3000));
    let Ok(port) = port else {
        eprintln!("healthcheck: PORT is not a port number");
        return ExitCode::FAILURE;
    };
    let host = std::env::var("HOST")
        .ok()
        .and_then(|value| value.trim().trim_matches(['[', ']']).parse::<IpAddr>().ok())
        .map(|ip| match ip {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            other => other,
        })
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    match probe(SocketAddr::new(host, port)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("healthcheck: {message}");
            ExitCode::FAILURE
        }
    }
}

fn probe(address: SocketAddr) -> Result<(), String> {
    let timeout = Duration::from_secs(4);
    let mut stream = TcpStream::connect_timeout(&address, timeout)
        .map_err(|error| format!("cannot connect to {address}: {error}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and(stream.set_write_timeout(Some(timeout)))
        .map_err(|error| error.to_string())?;
    let request = format!(
        "GET /api/health HTTP/1.1\r\nHost: {address}\r\nUser-Agent: focusflow-healthcheck\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|error| format!("cannot send the request: {error}"))?;
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < 12 {
        match stream.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(error) => return Err(format!("no answer: {error}")),
        }
    }
    let status_line = String::from_utf8_lossy(&head[..read]);
    if status_line.starts_with("HTTP/1.1 200") || status_line.starts_with("HTTP/1.0 200") {
        Ok(())
    } else {
        Err(format!(
            "unhealthy answer: {}",
            status_line.lines().next().unwrap_or("")
        ))
    }
}
