//! The command's one error type. Every message is one line that names what
//! was wrong; none carries a password (URLs are shown only as the driver's
//! credential-free description, or redacted by [`crate::target::redact`]).

/// Everything that makes a `tidepool` command fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// A flag (or the same setting from the environment or file) has a bad value.
    #[error("invalid value `{value}` for {flag}: {reason}")]
    InvalidValue {
        /// The flag, like `--duration`.
        flag: &'static str,
        /// The value given (never a URL).
        value: String,
        /// What is wrong and what would be accepted.
        reason: String,
    },
    /// A required setting is missing.
    #[error("missing {what}")]
    Missing {
        /// What is missing and where it can come from.
        what: &'static str,
    },
    /// The settings file could not be read or parsed.
    #[error("settings file {path}: {reason}")]
    ConfigFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The database URL is not usable.
    #[error("invalid database URL {url}: {reason}")]
    Url {
        /// The URL with any password replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A pool configuration was refused.
    #[error("{context}: {source}")]
    Pool {
        /// Which pool.
        context: String,
        /// The core's reason.
        #[source]
        source: tidepool::BuildError,
    },
    /// The database could not be reached or refused us.
    #[error("could not connect to {target}: {reason}")]
    Connect {
        /// The target, without credentials.
        target: String,
        /// The driver's reason.
        reason: String,
    },
    /// A statement the command needs failed.
    #[error("{what} failed on {target}: {reason}")]
    Database {
        /// What the command was doing.
        what: String,
        /// The target, without credentials.
        target: String,
        /// The driver's reason.
        reason: String,
    },
    /// A file could not be written or a resource could not be made.
    #[error("{what}: {source}")]
    Io {
        /// What the command was doing.
        what: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The latency histogram could not be made (its bounds are constants
    /// hdrhistogram accepts, so this is not expected).
    #[error("could not make a latency histogram: {0}")]
    Histogram(#[from] hdrhistogram::CreationError),
}

/// Exit status of a malformed command line: an unknown flag, or a flag
/// (or its environment variable) whose value is refused before anything
/// runs. clap uses the same number for its own usage errors.
pub const EXIT_USAGE: u8 = 2;

impl CliError {
    /// The process exit status for this error: [`EXIT_USAGE`] for a bad
    /// value on the command line, 1 for everything else (a settings file, a
    /// URL the drivers refuse, a server that cannot be reached).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::InvalidValue { .. } => EXIT_USAGE,
            _ => 1,
        }
    }

    /// A helper for I/O failures.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        CliError::Io {
            what: what.into(),
            source,
        }
    }
}

/// Renders an error and its sources on one line.
pub fn one_line(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
