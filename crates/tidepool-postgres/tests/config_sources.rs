//! A `PgConfig` from the libpq environment variables (through a lookup
//! closure, so no test touches the process environment) and, with the
//! `serde` feature, from a config file: the same meanings as the connection
//! string, and the password in neither `Debug` nor `Serialize` output nor
//! any error.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use tidepool_postgres::{ConfigError, PgConfig, PgHost, SslMode, TargetSessionAttrs};

fn from(env: &[(&str, &str)]) -> Result<PgConfig, ConfigError> {
    let env: HashMap<&str, &str> = env.iter().copied().collect();
    PgConfig::from_env_with(|name| env.get(name).map(|v| v.to_string()))
}

#[test]
fn every_libpq_variable_sets_its_parameter() {
    let cfg = from(&[
        ("PGHOST", "db1,db2"),
        ("PGHOSTADDR", "10.0.0.1,10.0.0.2"),
        ("PGPORT", "5433,5434"),
        ("PGUSER", "app"),
        ("PGPASSWORD", "Cq-env-secret"),
        ("PGDATABASE", "orders"),
        ("PGAPPNAME", "svc"),
        ("PGOPTIONS", "-c statement_timeout=5s"),
        ("PGSSLMODE", "verify-full"),
        ("PGSSLROOTCERT", "/etc/pg/ca.pem"),
        ("PGSSLCERT", "/etc/pg/app.crt"),
        ("PGSSLKEY", "/etc/pg/app.key"),
        ("PGCONNECT_TIMEOUT", "7"),
        ("PGTARGETSESSIONATTRS", "read-write"),
    ])
    .unwrap();
    assert_eq!(
        cfg.get_hosts(),
        &[PgHost::Tcp("db1".into()), PgHost::Tcp("db2".into())]
    );
    assert_eq!(cfg.get_ports(), &[5433, 5434]);
    assert_eq!(cfg.get_user(), Some("app"));
    assert_eq!(cfg.get_password(), Some("Cq-env-secret"));
    assert_eq!(cfg.get_dbname(), Some("orders"));
    assert_eq!(cfg.get_application_name(), Some("svc"));
    assert_eq!(cfg.get_options(), Some("-c statement_timeout=5s"));
    assert_eq!(cfg.get_ssl_mode(), SslMode::VerifyFull);
    assert_eq!(cfg.get_ssl_root_cert(), Some(Path::new("/etc/pg/ca.pem")));
    assert_eq!(cfg.get_ssl_cert(), Some(Path::new("/etc/pg/app.crt")));
    assert_eq!(cfg.get_ssl_key(), Some(Path::new("/etc/pg/app.key")));
    assert_eq!(cfg.get_connect_timeout(), Some(Duration::from_secs(7)));
    assert_eq!(
        cfg.get_target_session_attrs(),
        TargetSessionAttrs::ReadWrite
    );
    assert!(!format!("{cfg:?} {cfg}").contains("Cq-env-secret"));
}

#[test]
fn unset_and_empty_variables_keep_the_defaults() {
    let cfg = from(&[("PGHOST", ""), ("PGSSLMODE", "")]).unwrap();
    assert!(cfg.get_hosts().is_empty());
    assert_eq!(cfg.get_ssl_mode(), SslMode::Prefer);
    assert_eq!(cfg.redacted_url(), "postgres://localhost:5432");
}

#[test]
fn a_bad_value_names_its_variable_and_not_the_value() {
    for (var, value) in [
        ("PGPORT", "Cq-not-a-port"),
        ("PGSSLMODE", "Cq-sometimes"),
        ("PGCONNECT_TIMEOUT", "Cq-soon"),
        ("PGHOST", "Cq host with spaces"),
    ] {
        let err = from(&[(var, value)]).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(
            matches!(&err, ConfigError::Env { var: v, .. } if *v == var),
            "{shown}"
        );
        assert!(shown.contains(var), "{shown}");
        assert!(!shown.contains("Cq"), "{shown}");
    }
}

#[cfg(feature = "serde")]
mod serde_form {
    use super::*;

    #[test]
    fn a_config_file_reads_libpq_names_with_humantime_durations() {
        let cfg: PgConfig = toml::from_str(
            r#"
            host = ["db1", "/var/run/postgresql"]
            port = 5433
            user = "app"
            password = "Cq-file-secret"
            dbname = "orders"
            options = "-c search_path=app"
            statement_timeout = "1m 30s"
            connect_timeout = "3s"
            keepalives_idle = "45s"
            ssl_mode = "allow"
            target_session_attrs = "read-only"
            "#,
        )
        .unwrap();
        assert_eq!(
            cfg.get_hosts(),
            &[
                PgHost::Tcp("db1".into()),
                PgHost::Unix("/var/run/postgresql".into())
            ]
        );
        assert_eq!(cfg.get_ports(), &[5433]);
        assert_eq!(cfg.get_password(), Some("Cq-file-secret"));
        assert_eq!(cfg.get_statement_timeout(), Some(Duration::from_secs(90)));
        assert_eq!(cfg.get_connect_timeout(), Some(Duration::from_secs(3)));
        assert_eq!(cfg.get_ssl_mode(), SslMode::Allow);
        assert_eq!(cfg.get_target_session_attrs(), TargetSessionAttrs::ReadOnly);
        assert!(!format!("{cfg:?}").contains("Cq-file-secret"));
    }

    #[test]
    fn serializing_leaves_the_password_out_and_reads_back_the_rest() {
        let cfg = PgConfig::new()
            .host("db")
            .port(5433)
            .user("app")
            .password("Cq-ser-secret")
            .dbname("orders")
            .statement_timeout(Duration::from_millis(2500))
            .ssl_mode(SslMode::VerifyCa);
        let json = serde_json::to_string(&cfg).unwrap();
        assert!(!json.contains("Cq-ser-secret"), "{json}");
        assert!(json.contains(r#""statement_timeout":"2s 500ms""#), "{json}");
        let back: PgConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back.redacted_url(), cfg.redacted_url());
        assert_eq!(back.get_statement_timeout(), cfg.get_statement_timeout());
        assert_eq!(back.get_ssl_mode(), SslMode::VerifyCa);
        assert!(!back.has_password());
    }

    #[test]
    fn fields_override_a_url_and_unknown_fields_are_refused() {
        let cfg: PgConfig = serde_json::from_str(
            r#"{"url": "postgres://app:Cq-url-secret@db1/orders?sslmode=disable", "dbname": "billing"}"#,
        )
        .unwrap();
        assert_eq!(cfg.get_dbname(), Some("billing"));
        assert_eq!(cfg.get_password(), Some("Cq-url-secret"));
        let err = serde_json::from_str::<PgConfig>(r#"{"hots": "db"}"#).unwrap_err();
        assert!(err.to_string().contains("hots"), "{err}");
    }

    #[test]
    fn no_deserialization_error_shows_a_password() {
        for json in [
            r#"{"password": 1.5e300}"#,
            r#"{"password": true}"#,
            r#"{"password": ["Cq-list-secret"]}"#,
            r#"{"url": "postgres://app:2024?Cq-url-secret=1@h/db?sslmode=nope"}"#,
            r#"{"url": "password=ab Cq-url-secret=1"}"#,
        ] {
            let err = serde_json::from_str::<PgConfig>(json).unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("Cq-"), "{json}: {shown}");
            assert!(
                !shown.contains("1.5e300") && !shown.contains("true"),
                "{json}: {shown}"
            );
        }
        // A bare number is a password too: it means its digits.
        let cfg: PgConfig = serde_json::from_str(r#"{"password": 20240101}"#).unwrap();
        assert_eq!(cfg.get_password(), Some("20240101"));
    }
}
