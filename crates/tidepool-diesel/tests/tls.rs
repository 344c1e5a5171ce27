//! TLS for diesel-async connections, against the local server's
//! self-signed CA (made by .ci/setup-postgres.sh): `require` and
//! `verify-full` connections are encrypted, as the server itself reports
//! (`pg_stat_ssl`), and a CA that did not sign the server's certificate
//! fails the acquire at once with a typed, non-retryable [`Error::Tls`]
//! that never shows the password. A client certificate logs in the role
//! that accepts nothing else.
#![cfg(feature = "postgres")]

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use diesel_async::RunQueryDsl;
use tidepool::{Classify, FailureKind, Manager, Pool};
use tidepool_diesel::{Error, PgManager};

const CANARY: &str = "tls-canary-5c1e";

/// The directory of the test certificates, or None (with a notice) when
/// the setup script has not run.
fn tls_dir(test: &str) -> Option<PathBuf> {
    let ca = std::env::var_os("TIDEPOOL_PG_CA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/postgresql/tidepool-tls/ca.crt"));
    if ca.is_file() {
        return ca.parent().map(PathBuf::from);
    }
    assert!(
        !tidepool_testkit::database_required(),
        "{test}: CA file {} missing; run .ci/setup-postgres.sh as root",
        ca.display()
    );
    eprintln!("SKIPPED {test}: CA file missing (run .ci/setup-postgres.sh as root)");
    None
}

/// The port of the test server, and the certificate directory.
fn setup(test: &str) -> Option<(u16, PathBuf)> {
    let url = support::pg_url(test)?;
    let (_, port) = tidepool_testkit::host_port(&url, 5432)?;
    Some((port, tls_dir(test)?))
}

/// Whether the server says this connection's backend is encrypted.
async fn encrypted(pool: &Pool<PgManager>) -> bool {
    let mut conn = pool.get().await.unwrap();
    diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(
        "(SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())",
    ))
    .get_result::<bool>(&mut *conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn require_and_verify_full_connections_are_encrypted_on_the_server() {
    let Some((port, dir)) = setup("diesel_tls_encrypted") else {
        return;
    };
    let ca = dir.join("ca.crt");
    for url in [
        format!("postgres://postgres@127.0.0.1:{port}/test?sslmode=require"),
        format!(
            "postgres://postgres@localhost:{port}/test?sslmode=verify-full&sslrootcert={}",
            ca.display()
        ),
    ] {
        let pool = support::pool(PgManager::new(&url).unwrap(), 1).await;
        assert!(encrypted(&pool).await, "{url}");
    }
    // And the default (libpq's `prefer`) encrypts when the server offers it,
    // while `disable` does not.
    let prefer = support::pool(
        PgManager::new(&format!("postgres://postgres@127.0.0.1:{port}/test")).unwrap(),
        1,
    )
    .await;
    assert!(encrypted(&prefer).await, "prefer");
    let plain = support::pool(
        PgManager::new(&format!(
            "postgres://postgres@127.0.0.1:{port}/test?sslmode=disable"
        ))
        .unwrap(),
        1,
    )
    .await;
    assert!(!encrypted(&plain).await, "disable");
}

#[tokio::test]
async fn a_ca_that_did_not_sign_the_server_fails_the_acquire_at_once_typed_and_without_the_password(
) {
    let Some((port, dir)) = setup("diesel_tls_wrong_ca") else {
        return;
    };
    // A real CA, but the one for client certificates: it never signed the
    // server's certificate.
    let wrong_ca = dir.join("client-ca.crt");
    assert!(wrong_ca.is_file(), "{} missing", wrong_ca.display());
    let url = format!(
        "postgres://postgres:{CANARY}@localhost:{port}/test?sslmode=verify-full&sslrootcert={}",
        wrong_ca.display()
    );
    let manager = PgManager::new(&url).unwrap();
    let err = manager.connect().await.map(|_| ()).unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    assert_eq!(err.failure_kind(), FailureKind::Connect);
    assert!(!manager.is_retryable(&err));
    for shown in [err.to_string(), format!("{err:?}"), format!("{manager:?}")] {
        assert!(!shown.contains(CANARY), "{shown}");
    }

    // Through a pool: the acquire fails with the cause, not a timeout.
    let pool = Pool::builder(manager)
        .acquire_timeout(Duration::from_secs(30))
        .build()
        .await
        .unwrap();
    let started = Instant::now();
    match pool.get().await {
        Err(tidepool::Error::Create(e @ Error::Tls { .. })) => {
            assert!(!e.to_string().contains(CANARY), "{e}");
        }
        other => panic!("expected Create(Tls), got {:?}", other.map(|_| ())),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failed after {:?}, not at once",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_host_name_the_certificate_does_not_name_fails_verify_full() {
    let Some((port, dir)) = setup("diesel_tls_wrong_name") else {
        return;
    };
    // TCP goes to the real server (hostaddr); TLS checks the name `host`.
    let url = format!(
        "host=wrong-name.tidepool.test hostaddr=127.0.0.1 port={port} user=postgres dbname=test sslmode=verify-full sslrootcert={}",
        dir.join("ca.crt").display()
    );
    let err = PgManager::new(&url)
        .unwrap()
        .connect()
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("not valid for name"), "{err}");
}

#[tokio::test]
async fn a_client_certificate_logs_in_a_role_that_requires_one() {
    let Some((port, dir)) = setup("diesel_tls_client_cert") else {
        return;
    };
    let (cert, key) = (dir.join("client.crt"), dir.join("client.key"));
    assert!(
        cert.is_file() && key.is_file(),
        "client certificate files missing in {}; run .ci/setup-postgres.sh as root",
        dir.display()
    );
    // pg_hba.conf lets `tidepool_cert` in over TLS with `cert` only.
    let url = format!(
        "postgres://tidepool_cert@localhost:{port}/test?sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
        dir.join("ca.crt").display(),
        cert.display(),
        key.display()
    );
    let pool = support::pool(PgManager::new(&url).unwrap(), 1).await;
    let mut conn = pool.get().await.unwrap();
    let user: String = diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>(
        "current_user::text",
    ))
    .get_result(&mut *conn)
    .await
    .unwrap();
    assert_eq!(user, "tidepool_cert");
    drop(conn);
    assert!(encrypted(&pool).await);

    // Without the certificate the same role is refused, at once and
    // permanently (the server's 28000).
    let without = format!(
        "postgres://tidepool_cert@localhost:{port}/test?sslmode=verify-full&sslrootcert={}",
        dir.join("ca.crt").display()
    );
    let manager = PgManager::new(&without).unwrap();
    let err = manager.connect().await.map(|_| ()).unwrap_err();
    assert!(matches!(err, Error::Postgres { .. }), "{err:?}");
    assert!(!manager.is_retryable(&err), "{err}");
}

#[test]
fn an_unreadable_ca_file_is_refused_when_the_manager_is_built() {
    let err = PgManager::new(&format!(
        "postgres://app:{CANARY}@127.0.0.1/app?sslmode=verify-full&sslrootcert=/nonexistent/tp-ca.pem"
    ))
    .unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/tp-ca.pem"), "{err}");
    assert!(!err.to_string().contains(CANARY), "{err}");
    assert!(!format!("{err:?}").contains(CANARY), "{err:?}");
}
