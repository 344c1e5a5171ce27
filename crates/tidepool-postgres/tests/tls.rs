//! TLS against the local server's self-signed CA (made by
//! .ci/setup-postgres.sh): verify-full checks chain and host name, a bad
//! certificate or name fails at once with a typed non-retryable error, and
//! `require` never falls back to plaintext.

use std::path::PathBuf;
use std::time::Duration;

use tidepool::{Classify, FailureKind, Manager, Pool, Queryable, Value};
use tidepool_postgres::{PgError, PgManager};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod support;

/// The CA file, or None (with a notice) when the setup script has not run.
fn ca(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("TIDEPOOL_PG_CA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/postgresql/tidepool-tls/ca.crt"));
    if path.is_file() {
        return Some(path);
    }
    assert!(
        !tidepool_testkit::database_required(),
        "{test}: CA file {} missing; run .ci/setup-postgres.sh as root",
        path.display()
    );
    eprintln!(
        "SKIPPED {test}: CA file {} missing (run .ci/setup-postgres.sh as root)",
        path.display()
    );
    None
}

/// host, port of the test server.
fn target(test: &str) -> Option<(String, u16)> {
    let url = support::url(test)?;
    tidepool_testkit::host_port(&url, 5432)
}

async fn encrypted(manager: &PgManager) -> bool {
    let mut conn = manager.connect_one().await.unwrap();
    let row = conn
        .query_one_values(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    row.get("ssl") == Some(&Value::Bool(true))
}

fn assert_typed_tls_failure(manager: &PgManager, err: &PgError, needle: &str) {
    assert!(
        matches!(err, PgError::Tls { .. }),
        "expected a TLS error, got {err:?}"
    );
    assert!(err.to_string().contains(needle), "{err}");
    assert_eq!(manager.classify(err), FailureKind::Connect);
    assert_eq!(err.failure_kind(), FailureKind::Connect);
    assert!(!manager.is_retryable(err));
}

#[tokio::test]
async fn verify_full_connects_when_the_ca_is_trusted_and_the_name_matches() {
    let (Some((_, port)), Some(ca)) = (target("tls_verify_full"), ca("tls_verify_full")) else {
        return;
    };
    for host in ["localhost", "127.0.0.1"] {
        let url = format!(
            "postgres://postgres@{host}:{port}/test?sslmode=verify-full&sslrootcert={}",
            ca.display()
        );
        let manager = PgManager::from_url(&url).unwrap();
        assert!(encrypted(&manager).await, "{host}");
    }
    // The CA can also come from the builder.
    let manager = PgManager::builder_from_url(&format!(
        "postgres://postgres@localhost:{port}/test?sslmode=verify-full"
    ))
    .unwrap()
    .ca_file(&ca)
    .build()
    .unwrap();
    assert!(encrypted(&manager).await);
}

#[tokio::test]
async fn an_untrusted_certificate_fails_at_once_with_a_non_retryable_tls_error() {
    let (Some((_, port)), Some(_)) = (target("tls_untrusted"), ca("tls_untrusted")) else {
        return;
    };
    let manager = PgManager::from_url(&format!(
        "postgres://postgres@localhost:{port}/test?sslmode=verify-full"
    ))
    .unwrap();
    let err = manager
        .connect()
        .await
        .expect_err("the self-signed CA is not in the webpki roots");
    assert_typed_tls_failure(&manager, &err, "UnknownIssuer");

    // Through a pool: the acquire fails with the cause, not a timeout.
    let pool = Pool::builder(manager)
        .acquire_timeout(Duration::from_secs(30))
        .build()
        .await
        .unwrap();
    match pool.get().await {
        Err(tidepool::Error::Create(PgError::Tls { .. })) => {}
        other => panic!("expected Create(Tls), got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn a_hostname_mismatch_fails_verify_full_but_passes_verify_ca() {
    let (Some((addr, port)), Some(ca)) = (target("tls_mismatch"), ca("tls_mismatch")) else {
        return;
    };
    // TCP goes to the real server (hostaddr); TLS checks the name `host`.
    let url = |mode: &str| {
        format!(
            "host=wrong-name.tidepool.test hostaddr={addr} port={port} user=postgres dbname=test sslmode={mode} sslrootcert={}",
            ca.display()
        )
    };
    let strict = PgManager::from_url(&url("verify-full")).unwrap();
    let err = strict
        .connect()
        .await
        .expect_err("the certificate does not name wrong-name.tidepool.test");
    assert_typed_tls_failure(&strict, &err, "not valid for name");
    let chain_only = PgManager::from_url(&url("verify-ca")).unwrap();
    assert!(encrypted(&chain_only).await);
}

#[tokio::test]
async fn require_without_a_ca_file_encrypts_without_checking_the_certificate() {
    let Some((host, port)) = target("tls_require") else {
        return;
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    let manager = PgManager::from_url(&format!(
        "postgres://postgres@{host}:{port}/test?sslmode=require"
    ))
    .unwrap();
    assert!(encrypted(&manager).await);
}

#[tokio::test]
async fn require_never_falls_back_to_plaintext_when_the_server_refuses_tls() {
    // A fake server on loopback that answers the SSLRequest with 'N'.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 8];
        socket.read_exact(&mut request).await.unwrap();
        assert_eq!(
            &request[4..],
            &[0x04, 0xd2, 0x16, 0x2f],
            "not an SSLRequest"
        );
        socket.write_all(b"N").await.unwrap();
        // Whatever comes next would be a plaintext startup message.
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut rest)).await;
        rest
    });
    let manager = PgManager::from_url(&format!(
        "postgres://app:secret@127.0.0.1:{port}/db?sslmode=require"
    ))
    .unwrap();
    let err = manager.connect().await.expect_err("TLS is required");
    assert_typed_tls_failure(&manager, &err, "server does not support TLS");
    let plaintext_after_refusal = server.await.unwrap();
    assert!(
        plaintext_after_refusal.is_empty(),
        "the client sent {} plaintext bytes",
        plaintext_after_refusal.len()
    );
}
