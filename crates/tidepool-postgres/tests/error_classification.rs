//! Real server errors land in the right `FailureKind`, and the ones retrying
//! cannot fix (wrong password, unknown database) are not retryable.

use std::time::Duration;

use tidepool::{Classify, FailureKind, Manager, Pool, Queryable};
use tidepool_postgres::{PgError, PgManager};

mod support;

const CANARY_ENCODED: &str = "p%40ss%3Aw%25rd";
const CANARY_PIECES: [&str; 4] = ["p@ss:w%rd", "p%40ss%3Aw%25rd", "w%rd", "p@ss"];

async fn server_error(url: &str, sql: &str) -> PgError {
    let conn = PgManager::from_url(url)
        .unwrap()
        .connect_one()
        .await
        .unwrap();
    PgError::from(conn.batch_execute(sql).await.expect_err(sql))
}

#[tokio::test]
async fn caller_mistakes_are_client_errors() {
    let Some(url) = support::url("classify_client") else {
        return;
    };
    let url = support::plain(&url);
    for (sql, code) in [
        ("SELEC 1", "42601"),
        ("SELECT * FROM tidepool_no_such_table", "42P01"),
        ("SELECT 1 / 0", "22012"),
        (
            "CREATE TEMP TABLE u (x int PRIMARY KEY); INSERT INTO u VALUES (1), (1)",
            "23505",
        ),
        (
            "CREATE TEMP TABLE nn (x int NOT NULL); INSERT INTO nn VALUES (NULL)",
            "23502",
        ),
    ] {
        let err = server_error(&url, sql).await;
        assert_eq!(err.sqlstate(), Some(code), "{sql}: {err}");
        assert_eq!(err.failure_kind(), FailureKind::Client, "{sql}: {err}");
        assert!(!err.is_retryable_transaction());
    }
}

#[tokio::test]
async fn a_cancelled_statement_is_a_timeout() {
    let Some(url) = support::url("classify_timeout") else {
        return;
    };
    let err = server_error(
        &support::plain(&url),
        "SET statement_timeout = '20ms'; SELECT pg_sleep(5)",
    )
    .await;
    assert_eq!(err.sqlstate(), Some("57014"));
    assert_eq!(err.failure_kind(), FailureKind::Timeout);
}

#[tokio::test]
async fn an_unknown_database_is_a_non_retryable_connect_error_and_fails_the_acquire_at_once() {
    let Some(url) = support::url("classify_3d000") else {
        return;
    };
    let manager = PgManager::from_url(&support::url_with(
        &url,
        "postgres",
        None,
        "tidepool_no_such_db",
    ))
    .unwrap();
    let err = manager
        .connect()
        .await
        .expect_err("the database does not exist");
    assert_eq!(err.sqlstate(), Some("3D000"));
    assert_eq!(manager.classify(&err), FailureKind::Connect);
    assert!(!manager.is_retryable(&err));

    let pool = Pool::builder(manager)
        .acquire_timeout(Duration::from_secs(30))
        .build()
        .await
        .unwrap();
    match pool.get().await {
        Err(tidepool::Error::Create(e)) => assert_eq!(e.sqlstate(), Some("3D000")),
        other => panic!("expected Create(3D000), got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn a_wrong_password_is_a_non_retryable_connect_error_that_never_shows_the_password() {
    let Some(url) = support::url("classify_28p01") else {
        return;
    };
    // Needs the scram-sha-256 role from .ci/setup-postgres.sh.
    let mut admin = PgManager::from_url(&support::plain(&url))
        .unwrap()
        .connect_one()
        .await
        .unwrap();
    let has_role = admin
        .query_one_values(
            "SELECT count(*) AS n FROM pg_roles WHERE rolname = 'tidepool_pw'",
            &[],
        )
        .await
        .unwrap();
    if has_role.get("n") != Some(&tidepool::Value::Int(1)) {
        assert!(
            !tidepool_testkit::database_required(),
            "role tidepool_pw missing: run .ci/setup-postgres.sh"
        );
        eprintln!(
            "SKIPPED classify_28p01: role tidepool_pw missing (run .ci/setup-postgres.sh as root)"
        );
        return;
    }
    let manager = PgManager::from_url(&support::url_with(
        &url,
        "tidepool_pw",
        Some(CANARY_ENCODED),
        "test",
    ))
    .unwrap();
    let err = manager.connect().await.expect_err("wrong password");
    assert_eq!(err.sqlstate(), Some("28P01"), "{err}");
    assert_eq!(manager.classify(&err), FailureKind::Connect);
    assert!(!manager.is_retryable(&err));
    for text in [
        err.to_string(),
        format!("{err:?}"),
        format!("{manager:?}"),
        manager.describe(),
    ] {
        for piece in CANARY_PIECES {
            assert!(
                !text.contains(piece),
                "password piece {piece:?} leaked in {text}"
            );
        }
    }
    // No password at all, where one is required: also not retryable.
    let missing =
        PgManager::from_url(&support::url_with(&url, "tidepool_pw", None, "test")).unwrap();
    let err = missing.connect().await.expect_err("a password is required");
    assert!(!missing.is_retryable(&err), "{err:?}");
    // A configuration mistake of the caller's, not a sign of a sick database.
    assert_eq!(missing.classify(&err), FailureKind::Client, "{err:?}");
    // The right password works, so the failure above was the password.
    let good = PgManager::from_url(&support::url_with(
        &url,
        "tidepool_pw",
        Some("tidepool-canary"),
        "test",
    ))
    .unwrap();
    good.connect().await.unwrap();
}

#[tokio::test]
async fn too_many_connections_is_a_retryable_connect_error() {
    let Some(url) = support::url("classify_53300") else {
        return;
    };
    let url = support::plain(&url);
    let role = format!("tidepool_limited_{}", std::process::id());
    let admin = PgManager::from_url(&url)
        .unwrap()
        .connect_one()
        .await
        .unwrap();
    admin
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN CONNECTION LIMIT 0"
        ))
        .await
        .unwrap();
    let manager = PgManager::from_url(&support::url_with(&url, &role, None, "test")).unwrap();
    let err = manager
        .connect()
        .await
        .expect_err("the role may not connect");
    admin
        .batch_execute(&format!("DROP ROLE {role}"))
        .await
        .unwrap();
    assert_eq!(err.sqlstate(), Some("53300"), "{err}");
    assert_eq!(manager.classify(&err), FailureKind::Connect);
    assert!(manager.is_retryable(&err));
}

#[tokio::test]
async fn a_refused_connection_is_a_retryable_connect_error() {
    // Port 1 on loopback: nothing listens there.
    let manager =
        PgManager::from_url("postgres://postgres@127.0.0.1:1/test?sslmode=disable").unwrap();
    let err = manager
        .connect()
        .await
        .expect_err("nothing listens on port 1");
    assert_eq!(err.sqlstate(), None);
    assert_eq!(manager.classify(&err), FailureKind::Connect);
    assert!(manager.is_retryable(&err));
}

#[tokio::test]
async fn a_syntax_error_or_an_unknown_column_is_not_a_reason_to_reconnect() {
    let Some(url) = support::url("classify_not_retryable") else {
        return;
    };
    let url = support::plain(&url);
    let manager = PgManager::from_url(&url).unwrap();
    for (sql, code) in [
        ("SELEC 1", "42601"),
        ("SELECT tidepool_no_such_column FROM pg_class", "42703"),
    ] {
        let err = server_error(&url, sql).await;
        assert_eq!(err.sqlstate(), Some(code), "{err}");
        assert!(!manager.is_retryable(&err), "{sql}: {err}");
    }
}

#[tokio::test]
async fn a_setting_the_server_refuses_at_connect_is_not_worth_reconnecting() {
    let Some(url) = support::url("classify_bad_option") else {
        return;
    };
    let url = format!(
        "{}&options=-c%20statement_timeout%3Dtidepool-bogus",
        support::plain(&url)
    );
    let manager = PgManager::from_url(&url).unwrap();
    let err = manager
        .connect()
        .await
        .map(|_| ())
        .expect_err("bad setting");
    assert_eq!(err.sqlstate(), Some("22023"), "{err}");
    assert_eq!(manager.classify(&err), FailureKind::Client);
    assert!(!manager.is_retryable(&err), "{err}");
    let pool = Pool::builder(manager)
        .acquire_timeout(Duration::from_secs(20))
        .build()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    match pool.get().await {
        Err(tidepool::Error::Create(e)) => assert_eq!(e.sqlstate(), Some("22023"), "{e}"),
        other => panic!("expected Create(22023), got {:?}", other.map(|_| ())),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "retried for {:?}",
        started.elapsed()
    );
}
