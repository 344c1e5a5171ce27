//! TLS for diesel-async MySQL/MariaDB connections, against the local
//! server's self-signed CA (made by .ci/setup-mariadb.sh; the certificate
//! names 127.0.0.1): `required` and `verify_identity` sessions are
//! encrypted, as the server itself reports (`Ssl_cipher`), and a CA that
//! did not sign the server's certificate fails the acquire at once with a
//! typed, non-retryable [`Error::Tls`] that never shows the password.
#![cfg(feature = "mysql")]

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use diesel_async::RunQueryDsl;
use tidepool::{Classify, FailureKind, Manager, Pool};
use tidepool_diesel::{Error, MysqlManager};

const CANARY: &str = "tls-canary-9d2b";

/// A CA that signed nothing the test server presents (the one
/// tidepool-mysql's TLS suite uses).
const UNRELATED_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBsTCCAVegAwIBAgIUK320zDtpt39UCGl/UOv6pqj54zEwCgYIKoZIzj0EAwIw
JTEjMCEGA1UEAwwadGlkZXBvb2wgdW5yZWxhdGVkIHRlc3QgQ0EwIBcNMjYxMTI0
MDQzMDUxWhgPMjEyNjEwMzEwNDMwNTFaMCUxIzAhBgNVBAMMGnRpZGVwb29sIHVu
cmVsYXRlZCB0ZXN0IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEWs8RzS57
S04Yv55bK+xQXeGTFievLiMVZwai7BOsnJ91a0kTMuQ/2RLMjsGe+O14+yfEtlbi
3zaBqMB9TeeUbKNjMGEwHQYDVR0OBBYEFCfweh0A/u6IMp9QpUkadgWDAEZIMB8G
A1UdIwQYMBaAFCfweh0A/u6IMp9QpUkadgWDAEZIMA8GA1UdEwEB/wQFMAMBAf8w
DgYDVR0PAQH/BAQDAgEGMAoGCCqGSM49BAMCA0gAMEUCIE5qOQ/Z6HhNEm/h9xoZ
2sJBJGQNB0cX85BWLFCJQ7AfAiEA8YpXh0MfBCxX6Z0mSTLAYYh7lTZLzgfqB3ec
uotRUg4=
-----END CERTIFICATE-----
";

/// The server's CA file, or None (with a notice) when the setup script has
/// not run.
fn ca(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("TIDEPOOL_MYSQL_CA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/mysql/tidepool-tls/ca.crt"));
    if path.is_file() {
        return Some(path);
    }
    assert!(
        !tidepool_testkit::database_required(),
        "{test}: CA file {} missing; run .ci/setup-mariadb.sh as root",
        path.display()
    );
    eprintln!("SKIPPED {test}: CA file missing (run .ci/setup-mariadb.sh as root)");
    None
}

/// The server's URL with 127.0.0.1 as host (the name its certificate
/// carries) and `options` appended, and the CA file.
fn setup(test: &str, options: &str) -> Option<(String, PathBuf)> {
    let url = support::mysql_url(test)?;
    let (_, port) = tidepool_testkit::host_port(&url, 3306)?;
    let ca = ca(test)?;
    let options = options.replace("{ca}", &ca.display().to_string());
    Some((
        format!("mysql://root:{CANARY}@127.0.0.1:{port}/test?{options}"),
        ca,
    ))
}

/// The session's cipher, as the server reports it; empty when plain.
async fn cipher(pool: &Pool<MysqlManager>) -> String {
    let mut conn = pool.get().await.unwrap();
    diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>(
        "(SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'SSL_CIPHER')",
    ))
    .get_result::<String>(&mut *conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn required_and_verify_identity_sessions_are_encrypted_on_the_server() {
    for (test, options) in [
        ("diesel_mysql_tls_required", "ssl-mode=required"),
        (
            "diesel_mysql_tls_verify_identity",
            "ssl-mode=verify_identity&ssl-ca={ca}",
        ),
    ] {
        let Some((url, _)) = setup(test, options) else {
            return;
        };
        // root has no password here; the canary is never sent as one.
        let url = url.replace(&format!(":{CANARY}"), "");
        let pool = support::pool(MysqlManager::new(&url).unwrap(), 1).await;
        assert!(!cipher(&pool).await.is_empty(), "{options}: not encrypted");
    }
    let Some((url, _)) = setup("diesel_mysql_tls_disabled", "ssl-mode=disabled") else {
        return;
    };
    let url = url.replace(&format!(":{CANARY}"), "");
    let pool = support::pool(MysqlManager::new(&url).unwrap(), 1).await;
    assert!(cipher(&pool).await.is_empty(), "disabled, yet encrypted");
}

#[tokio::test]
async fn a_ca_that_did_not_sign_the_server_fails_the_acquire_at_once_typed_and_without_the_password(
) {
    let wrong_ca =
        std::env::temp_dir().join(format!("tp-diesel-unrelated-ca-{}.pem", std::process::id()));
    std::fs::write(&wrong_ca, UNRELATED_CA).unwrap();
    let Some((url, _)) = setup(
        "diesel_mysql_tls_wrong_ca",
        &format!("ssl-mode=verify_identity&ssl-ca={}", wrong_ca.display()),
    ) else {
        return;
    };
    let manager = MysqlManager::new(&url).unwrap();
    let err = manager.connect().await.map(|_| ()).unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert_eq!(err.failure_kind(), FailureKind::Connect);
    assert!(!manager.is_retryable(&err));
    for shown in [err.to_string(), format!("{err:?}"), format!("{manager:?}")] {
        assert!(!shown.contains(CANARY), "{shown}");
    }

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
    let _ = std::fs::remove_file(&wrong_ca);
}

#[test]
fn an_unreadable_ca_file_is_refused_when_the_manager_is_built() {
    let err = MysqlManager::new(&format!(
        "mysql://app:{CANARY}@127.0.0.1/app?ssl-mode=verify_identity&ssl-ca=/nonexistent/tp-ca.pem"
    ))
    .unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/tp-ca.pem"), "{err}");
    assert!(!format!("{err} {err:?}").contains(CANARY));
}
