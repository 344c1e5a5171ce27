//! How a PostgreSQL error maps to a [`FailureKind`]: SQLSTATE classes for
//! errors the server sent, the driver's own error kinds for the rest. One
//! table, used by [`PgError`](crate::PgError)'s `Classify` impl, its
//! `is_retryable_connect` (the manager's `is_retryable`) and its
//! `is_retryable_statement`, so they can never disagree.
//!
//! | SQLSTATE | kind |
//! |---|---|
//! | `40001` serialization failure, `40P01` deadlock | Transaction (retryable) |
//! | `57014` query canceled, `55P03` lock not available | Timeout |
//! | `57P01`-`57P03`, `57P05`, class `08`, `53300`, `25P03`, `28000`, `28P01`, `3D000` | Connect |
//! | class `42` (syntax, undefined object), `23` (constraint), `22` (data), `25` (transaction state), `0A`, `26`, `34`, `2B`-`2F`, `44` | Client |
//! | anything else | Query |
//!
//! Errors without a SQLSTATE: I/O, closed connection, TLS → Connect; a
//! timeout → Timeout; converting parameters or columns, wrong parameter or
//! row counts → Client.

use tidepool::FailureKind;

/// The failure kind for a SQLSTATE code.
///
/// ```
/// use tidepool::FailureKind;
/// use tidepool_postgres::sqlstate_kind;
/// assert_eq!(sqlstate_kind("42601"), FailureKind::Client);
/// assert_eq!(sqlstate_kind("40001"), FailureKind::Transaction);
/// assert_eq!(sqlstate_kind("57P01"), FailureKind::Connect);
/// assert_eq!(sqlstate_kind("57014"), FailureKind::Timeout);
/// assert_eq!(sqlstate_kind("53100"), FailureKind::Query);
/// ```
pub fn sqlstate_kind(code: &str) -> FailureKind {
    match code {
        "40001" | "40P01" => FailureKind::Transaction,
        "57014" | "55P03" => FailureKind::Timeout,
        "57P01" | "57P02" | "57P03" | "57P05" | "53300" | "25P03" | "28000" | "28P01" | "3D000" => {
            FailureKind::Connect
        }
        _ => match code.get(..2) {
            Some("08") => FailureKind::Connect,
            Some("42" | "23" | "22" | "25" | "0A" | "26" | "34" | "2B" | "2D" | "2F" | "44") => {
                FailureKind::Client
            }
            _ => FailureKind::Query,
        },
    }
}

/// Whether a transaction that failed with this SQLSTATE may succeed if run
/// again from the start (serialization failure, deadlock).
pub(crate) fn sqlstate_is_retryable_transaction(code: &str) -> bool {
    matches!(code, "40001" | "40P01")
}

/// Whether connecting again may help after the server refused a connection
/// with this SQLSTATE. Authentication failures, an unknown database and a
/// missing CONNECT privilege are permanent until someone changes the setup.
pub(crate) fn sqlstate_is_retryable_connect(code: &str) -> bool {
    !matches!(code, "28P01" | "28000" | "3D000" | "42501")
}

/// Whether the same statement may succeed if run again (on a fresh
/// connection when this one is gone): the condition passes by itself. A
/// statement timeout or cancel (57014) is not here: the statement would
/// likely run as long again.
pub(crate) fn sqlstate_is_transient(code: &str) -> bool {
    matches!(
        code,
        "40001" | "40P01" | "55P03" | "53200" | "53300" | "57P01" | "57P02" | "57P03"
    ) || code.starts_with("08")
}

/// Whether the server refused a connection because it is starting up or
/// shutting down (`57P03` cannot_connect_now): a state it announces and
/// leaves by itself, which the breaker gives time instead of opening.
pub(crate) fn sqlstate_says_restarting(code: &str) -> bool {
    code == "57P03"
}

/// Whether a driver error without a SQLSTATE is permanent for connecting:
/// a missing password or a configuration tokio-postgres refuses.
pub(crate) fn driver_error_is_permanent(e: &tokio_postgres::Error) -> bool {
    let text = e.to_string();
    [
        "authentication error",
        "invalid configuration",
        "invalid connection string",
    ]
    .iter()
    .any(|p| text.starts_with(p))
}

/// The failure kind for a driver error.
pub(crate) fn driver_error_kind(e: &tokio_postgres::Error) -> FailureKind {
    if let Some(code) = e.code() {
        return sqlstate_kind(code.code());
    }
    match driver_kind(e) {
        DriverKind::Connection => FailureKind::Connect,
        DriverKind::Timeout => FailureKind::Timeout,
        DriverKind::Caller => FailureKind::Client,
        DriverKind::Other => FailureKind::Query,
    }
}

/// Whether the error leaves the connection unusable: closed, I/O, a FATAL
/// or PANIC from the server, or a connection-class SQLSTATE.
pub(crate) fn driver_error_is_fatal(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        return matches!(db.severity(), "FATAL" | "PANIC")
            || code.starts_with("08")
            || matches!(code, "57P01" | "57P02" | "57P03" | "57P05" | "25P03");
    }
    matches!(driver_kind(e), DriverKind::Connection)
}

enum DriverKind {
    Connection,
    Timeout,
    Caller,
    Other,
}

/// tokio-postgres keeps its error kind private; its `Display` text is the
/// only stable handle (pinned by the tests in this module).
fn driver_kind(e: &tokio_postgres::Error) -> DriverKind {
    if e.is_closed() {
        return DriverKind::Connection;
    }
    let text = e.to_string();
    const CONNECTION: [&str; 6] = [
        "error communicating with the server",
        "error connecting to server",
        "error performing TLS handshake",
        "unexpected message from server",
        "error parsing response from server",
        "authentication error",
    ];
    const CALLER: [&str; 7] = [
        "error serializing parameter",
        "error deserializing column",
        "invalid column",
        "expected ",
        "query returned an unexpected number of",
        "invalid connection string",
        "invalid configuration",
    ];
    if CONNECTION.iter().any(|p| text.starts_with(p)) {
        DriverKind::Connection
    } else if text.starts_with("timeout waiting for server") {
        DriverKind::Timeout
    } else if CALLER.iter().any(|p| text.starts_with(p)) {
        DriverKind::Caller
    } else {
        DriverKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sqlstate_named_in_the_issue_maps_to_its_kind() {
        for (code, kind) in [
            ("42601", FailureKind::Client),
            ("42P01", FailureKind::Client),
            ("23505", FailureKind::Client),
            ("22012", FailureKind::Client),
            ("57P01", FailureKind::Connect),
            ("57P02", FailureKind::Connect),
            ("57P03", FailureKind::Connect),
            ("08006", FailureKind::Connect),
            ("53300", FailureKind::Connect),
            ("40001", FailureKind::Transaction),
            ("40P01", FailureKind::Transaction),
            ("57014", FailureKind::Timeout),
            ("XX000", FailureKind::Query),
            ("53100", FailureKind::Query),
        ] {
            assert_eq!(sqlstate_kind(code), kind, "{code}");
        }
    }

    #[test]
    fn wrong_password_and_unknown_database_are_not_retryable() {
        assert!(!sqlstate_is_retryable_connect("28P01"));
        assert!(!sqlstate_is_retryable_connect("3D000"));
        assert!(sqlstate_is_retryable_connect("53300"));
        assert!(sqlstate_is_retryable_connect("57P03"));
    }

    #[test]
    fn caller_mistakes_and_statement_timeouts_are_not_transient() {
        for code in [
            "42601", "42703", "23505", "22012", "57014", "28P01", "XX000",
        ] {
            assert!(!sqlstate_is_transient(code), "{code}");
        }
        for code in ["40001", "40P01", "55P03", "08006", "57P01", "53300"] {
            assert!(sqlstate_is_transient(code), "{code}");
        }
    }

    #[test]
    fn only_cannot_connect_now_says_the_server_is_restarting() {
        assert!(sqlstate_says_restarting("57P03"));
        for code in ["57P01", "57P02", "08006", "53300", "28P01"] {
            assert!(!sqlstate_says_restarting(code), "{code}");
        }
    }
}
