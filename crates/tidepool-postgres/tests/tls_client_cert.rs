//! Client certificates (`sslcert` + `sslkey`, rustls): the role
//! `tidepool_cert`, which .ci/setup-postgres.sh lets in over TLS with `cert`
//! authentication only, logs in with the certificate and is refused
//! without it; unusable files are refused when the manager is built,
//! naming the file and never showing the key.

use std::path::PathBuf;

use tidepool::{Manager, Queryable, Value};
use tidepool_postgres::{ConfigError, PgConfig, PgError, PgManager, SslMode};

mod support;

struct Files {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// The CA and client files, or None (with a notice) when the setup script
/// has not made them.
fn files(test: &str) -> Option<Files> {
    let dir = std::env::var_os("TIDEPOOL_PG_CA")
        .map(PathBuf::from)
        .and_then(|ca| ca.parent().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/lib/postgresql/tidepool-tls"));
    let files = Files {
        ca: dir.join("ca.crt"),
        cert: dir.join("client.crt"),
        key: dir.join("client.key"),
    };
    if [&files.ca, &files.cert, &files.key]
        .iter()
        .all(|p| p.is_file())
    {
        return Some(files);
    }
    assert!(
        !tidepool_testkit::database_required(),
        "{test}: client certificate files missing in {}; run .ci/setup-postgres.sh as root",
        dir.display()
    );
    eprintln!(
        "SKIPPED {test}: client certificate files missing (run .ci/setup-postgres.sh as root)"
    );
    None
}

fn port(test: &str) -> Option<u16> {
    let url = support::url(test)?;
    tidepool_testkit::host_port(&url, 5432).map(|(_, p)| p)
}

#[tokio::test]
async fn a_client_certificate_logs_in_a_role_that_requires_one() {
    let (Some(port), Some(f)) = (port("client_cert_login"), files("client_cert_login")) else {
        return;
    };
    let url = format!(
        "postgres://tidepool_cert@localhost:{port}/test?sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
        f.ca.display(),
        f.cert.display(),
        f.key.display()
    );
    let by_url = PgManager::from_url(&url).unwrap();
    let by_setters = PgManager::builder(
        PgConfig::new()
            .host("localhost")
            .port(port)
            .user("tidepool_cert")
            .dbname("test")
            .ssl_mode(SslMode::VerifyFull)
            .ssl_root_cert(&f.ca)
            .ssl_cert(&f.cert)
            .ssl_key(&f.key),
    )
    .build()
    .unwrap();
    for manager in [by_url, by_setters] {
        let mut conn = manager.connect().await.unwrap();
        let row = conn
            .query_one_values(
                "SELECT current_user::text AS who, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(
            row.get("who").and_then(Value::as_str),
            Some("tidepool_cert")
        );
        assert_eq!(
            row.get("client_dn").and_then(Value::as_str),
            Some("/CN=tidepool_cert")
        );
    }
}

#[tokio::test]
async fn without_its_certificate_the_role_is_refused_and_not_retried() {
    let (Some(port), Some(f)) = (port("client_cert_missing"), files("client_cert_missing")) else {
        return;
    };
    let manager = PgManager::from_url(&format!(
        "postgres://tidepool_cert@localhost:{port}/test?sslmode=verify-full&sslrootcert={}",
        f.ca.display()
    ))
    .unwrap();
    let err = manager
        .connect()
        .await
        .map(|_| ())
        .expect_err("no certificate");
    assert_eq!(err.sqlstate(), Some("28000"), "{err}");
    assert!(!manager.is_retryable(&err));
}

#[test]
fn a_certificate_without_its_key_or_a_key_without_its_certificate_is_refused() {
    for url in [
        "postgres://u@h/db?sslmode=require&sslcert=/tmp/c.crt",
        "postgres://u@h/db?sslmode=require&sslkey=/tmp/c.key",
    ] {
        let err = url.parse::<PgConfig>().unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::InvalidValue {
                    name: "sslcert" | "sslkey",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

#[test]
fn unusable_files_are_refused_at_build_time_naming_the_file_never_the_key() {
    let dir = std::env::temp_dir().join(format!("tidepool-client-cert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("client.crt");
    let key = dir.join("client.key");
    std::fs::write(&cert, "not a certificate").unwrap();
    std::fs::write(&key, "Cq-key-canary, not a key").unwrap();
    let build = |cert: &std::path::Path, key: &std::path::Path| {
        PgManager::from_url(&format!(
            "postgres://u@h/db?sslmode=require&sslcert={}&sslkey={}",
            cert.display(),
            key.display()
        ))
        .map(|_| ())
        .unwrap_err()
    };
    let check = |err: PgError, path: &std::path::Path| {
        let shown = format!("{err} {err:?}");
        assert!(
            matches!(err, PgError::Config(ConfigError::ClientCert { .. })),
            "{shown}"
        );
        assert!(shown.contains(&path.display().to_string()), "{shown}");
        assert!(!shown.contains("Cq-key-canary"), "{shown}");
    };
    check(build(&cert, &key), &cert);
    let missing = dir.join("missing.crt");
    check(build(&missing, &key), &missing);
    // A real certificate, so the key is what is refused.
    if let Some(f) = files("client_cert_bad_key") {
        check(build(&f.cert, &key), &key);
    }
    std::fs::remove_dir_all(&dir).ok();
}
