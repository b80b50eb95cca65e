//! Structured logs: `tracing` key/value fields, as text for people or JSON lines for machines.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; a bad filter falls back to `info` with a warning.
pub fn init(filter: &str, json: bool) {
    let (env_filter, bad) = match EnvFilter::try_new(filter) {
        Ok(f) => (f, None),
        Err(e) => (EnvFilter::new("info"), Some(e.to_string())),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_target(false);
    let installed = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    if installed.is_ok() {
        if let Some(e) = bad {
            tracing::warn!(filter, error = %e, "invalid log filter; using info");
        }
    }
}
