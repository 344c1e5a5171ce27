//! The enumerated connection settings: [`SslMode`] and
//! [`TargetSessionAttrs`], with their connection-string names. Parsing them
//! refuses unknown names with an error that never shows the value: a
//! misplaced piece of a password looks like any keyword.

use std::str::FromStr;

use crate::error::ConfigError;

/// How hard to insist on TLS, with libpq's meanings.
///
/// | mode | TLS | certificate checked | host name checked |
/// |---|---|---|---|
/// | `disable` | never | - | - |
/// | `allow`, `prefer` | if the server offers it | only with a CA file | no |
/// | `require` | always (never downgrades) | only with a CA file | no |
/// | `verify-ca` | always | yes | no |
/// | `verify-full` | always | yes | yes |
///
/// Certificates are checked against the webpki roots plus the CA file
/// (`sslrootcert=` or [`PgManagerBuilder::ca_file`](crate::PgManagerBuilder::ca_file)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS if the server offers it (treated as `prefer`).
    Allow,
    /// TLS if the server offers it. The default, as in libpq.
    #[default]
    Prefer,
    /// TLS always; fails when the server does not offer it.
    Require,
    /// TLS always, with a certificate signed by a trusted CA.
    VerifyCa,
    /// TLS always, with a trusted certificate naming the host.
    VerifyFull,
}

impl SslMode {
    /// The name used in connection strings.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether the connection must be encrypted.
    pub fn requires_tls(self) -> bool {
        matches!(
            self,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }
}

impl FromStr for SslMode {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return Err(ConfigError::SslMode),
        })
    }
}

/// Which servers of a multi-host list are acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TargetSessionAttrs {
    /// Any server. The default.
    #[default]
    Any,
    /// A server that accepts writes (a primary).
    ReadWrite,
    /// A server in read-only mode (a standby).
    ReadOnly,
}

impl TargetSessionAttrs {
    /// The name used in connection strings.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetSessionAttrs::Any => "any",
            TargetSessionAttrs::ReadWrite => "read-write",
            TargetSessionAttrs::ReadOnly => "read-only",
        }
    }
}

impl FromStr for TargetSessionAttrs {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Ok(match s {
            "any" => TargetSessionAttrs::Any,
            "read-write" => TargetSessionAttrs::ReadWrite,
            "read-only" => TargetSessionAttrs::ReadOnly,
            _ => return Err(ConfigError::TargetSessionAttrs),
        })
    }
}
