//! Tracing set-up: `RUST_LOG` filter, text or JSON lines on stderr.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::{ConfigError, LogFormat};

/// Installs the global subscriber. A bad `RUST_LOG` is a configuration error like any other.
pub fn init(format: LogFormat, filter: &str) -> Result<(), ConfigError> {
    let filter = EnvFilter::try_new(filter).map_err(|error| ConfigError {
        variable: "RUST_LOG",
        message: format!("is not a valid filter ({error})"),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::NONE)
        // Colour only for a person at a terminal, not in `docker logs` or a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
    // Already installed (tests build several apps in one process) is fine.
    let _ = result;
    Ok(())
}
