//! Connection strings: what parses, what is refused, and that the password
//! never shows in Debug or Display of the config, the manager or an error.

use std::path::PathBuf;
use std::time::Duration;

use tidepool_postgres::{ConfigError, PgConfig, PgHost, PgManager, SslMode, TargetSessionAttrs};

const CANARY: &str = "p@ss:w%rd";
const CANARY_ENCODED: &str = "p%40ss%3Aw%25rd";
const CANARY_PIECES: [&str; 4] = ["p@ss:w%rd", "p%40ss%3Aw%25rd", "w%rd", "p@ss"];

fn assert_no_canary(text: &str) {
    for piece in CANARY_PIECES {
        assert!(
            !text.contains(piece),
            "password piece {piece:?} leaked in: {text}"
        );
    }
}

#[test]
fn a_full_url_parses_every_field() {
    let cfg: PgConfig = format!(
        "postgresql://app:{CANARY_ENCODED}@db.example:6432/orders?sslmode=verify-full&application_name=svc&connect_timeout=7&target_session_attrs=read-write"
    )
    .parse()
    .unwrap();
    assert_eq!(cfg.get_hosts(), &[PgHost::Tcp("db.example".into())]);
    assert_eq!(cfg.get_ports(), &[6432]);
    assert_eq!(cfg.get_user(), Some("app"));
    assert!(cfg.has_password());
    assert_eq!(cfg.get_dbname(), Some("orders"));
    assert_eq!(cfg.get_ssl_mode(), SslMode::VerifyFull);
    assert_eq!(cfg.get_application_name(), Some("svc"));
    assert_eq!(cfg.get_connect_timeout(), Some(Duration::from_secs(7)));
    assert_eq!(
        cfg.get_target_session_attrs(),
        TargetSessionAttrs::ReadWrite
    );
}

#[test]
fn ipv6_hosts_parse_with_and_without_ports() {
    let cfg: PgConfig = "postgres://u@[::1]:5433/db".parse().unwrap();
    assert_eq!(cfg.get_hosts(), &[PgHost::Tcp("::1".into())]);
    assert_eq!(cfg.get_ports(), &[5433]);
    assert_eq!(cfg.redacted_url(), "postgres://u@[::1]:5433/db");
    let cfg: PgConfig = "postgres://u@[fe80::1]/db".parse().unwrap();
    assert_eq!(cfg.get_hosts(), &[PgHost::Tcp("fe80::1".into())]);
}

#[test]
fn unix_socket_hosts_parse_from_urls_and_key_value_strings() {
    let from_path: PgConfig = "postgres://u@%2Fvar%2Frun%2Fpostgresql/db".parse().unwrap();
    let from_param: PgConfig = "postgres:///db?host=/var/run/postgresql&user=u"
        .parse()
        .unwrap();
    let from_kv: PgConfig = "host=/var/run/postgresql user=u dbname=db".parse().unwrap();
    for cfg in [from_path, from_param, from_kv] {
        assert_eq!(
            cfg.get_hosts(),
            &[PgHost::Unix(PathBuf::from("/var/run/postgresql"))]
        );
        assert_eq!(cfg.get_dbname(), Some("db"));
    }
}

#[test]
fn multi_host_lists_parse_in_both_formats() {
    let url: PgConfig = "postgres://u@a:1,b:2/db?target_session_attrs=read-only"
        .parse()
        .unwrap();
    assert_eq!(
        url.get_hosts(),
        &[PgHost::Tcp("a".into()), PgHost::Tcp("b".into())]
    );
    assert_eq!(url.get_ports(), &[1, 2]);
    assert_eq!(url.get_target_session_attrs(), TargetSessionAttrs::ReadOnly);
    assert_eq!(url.redacted_url(), "postgres://u@a:1,b:2/db");
    let kv: PgConfig = "host=a,b port=1,2 user=u password='it\\'s' dbname=db"
        .parse()
        .unwrap();
    assert_eq!(kv.get_hosts().len(), 2);
    assert_eq!(kv.get_ports(), &[1, 2]);
}

#[test]
fn malformed_urls_are_refused_with_an_error_naming_the_fault() {
    type Check = fn(&ConfigError) -> bool;
    let cases: [(&str, Check); 12] = [
        (
            "mysql://u@h/db",
            |e| matches!(e, ConfigError::Scheme { scheme } if scheme == "mysql"),
        ),
        ("postgres://u@h:0/db", |e| {
            matches!(e, ConfigError::Port { .. })
        }),
        ("postgres://u@h:65536/db", |e| {
            matches!(e, ConfigError::Port { .. })
        }),
        ("postgres://u@h:54x2/db", |e| {
            matches!(e, ConfigError::Port { .. })
        }),
        ("postgres://u%zz@h/db", |e| {
            matches!(e, ConfigError::PercentEncoding { component: "user" })
        }),
        ("postgres://u:bad%2@h/db", |e| {
            matches!(
                e,
                ConfigError::PercentEncoding {
                    component: "password"
                }
            )
        }),
        ("postgres://u@h/db?sslmode=sometimes", |e| {
            matches!(e, ConfigError::SslMode)
        }),
        ("postgres://u@h/db?colour=blue", |e| {
            matches!(e, ConfigError::UnknownParameter { position: 1 })
        }),
        ("postgres://u@[::1/db", |e| {
            matches!(e, ConfigError::Host { .. })
        }),
        ("postgres://u@a:1,b:2,c:3/db?port=1,2", |e| {
            matches!(e, ConfigError::PortCount { ports: 2, hosts: 3 })
        }),
        ("postgres://u@h/db?connect_timeout=-1", |e| {
            matches!(
                e,
                ConfigError::InvalidValue {
                    name: "connect_timeout",
                    ..
                }
            )
        }),
        ("host=/tmp sslmode=require user=u", |e| {
            matches!(e, ConfigError::TlsOverUnixSocket { .. })
        }),
    ];
    for (url, check) in cases {
        let err = url.parse::<PgConfig>().expect_err(url);
        assert!(check(&err), "{url}: unexpected {err:?}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn the_password_never_shows_in_config_debug_or_the_redacted_url() {
    let cfg: PgConfig = format!("postgres://app:{CANARY_ENCODED}@127.0.0.1:5432/test")
        .parse()
        .unwrap();
    assert_no_canary(&format!("{cfg:?}"));
    assert_no_canary(&format!("{cfg:#?}"));
    assert_no_canary(&cfg.redacted_url());
    assert_no_canary(&cfg.to_string());
    assert_eq!(cfg.to_string(), "postgres://app@127.0.0.1:5432/test");
    let by_hand = PgConfig::new()
        .host("127.0.0.1")
        .user("app")
        .password(CANARY);
    assert_no_canary(&format!("{by_hand:?}"));
    let manager = PgManager::from_url(&format!(
        "postgres://app:{CANARY_ENCODED}@127.0.0.1:5432/test"
    ))
    .unwrap();
    assert_no_canary(&format!("{manager:?}"));
    assert_no_canary(&tidepool::Manager::describe(&manager));
}

#[test]
fn errors_from_urls_holding_the_password_never_echo_it() {
    let bad = [
        format!("postgres://app:{CANARY}@h/db"),
        format!("postgres://app:{CANARY_ENCODED}@h:0/db"),
        format!("postgres://app:{CANARY_ENCODED}@h:99999/db"),
        format!("postgres://app:{CANARY_ENCODED}@h/db?sslmode=nope"),
        format!("postgres://app:{CANARY_ENCODED}@h/db?bogus=1"),
        format!("mysql://app:{CANARY_ENCODED}@h/db"),
        format!("postgres://app:{CANARY}/db"),
        format!("host=h user=app password='{CANARY}' sslmode=nope"),
        format!("host=h user=app password='{CANARY}"),
        format!("postgres://app:{CANARY_ENCODED}@h/db?sslmode={CANARY_ENCODED}"),
    ];
    for url in &bad {
        let err = url.parse::<PgConfig>().expect_err(url);
        assert_no_canary(&err.to_string());
        assert_no_canary(&format!("{err:?}"));
        let err = PgManager::from_url(url).expect_err(url);
        assert_no_canary(&err.to_string());
        assert_no_canary(&format!("{err:?}"));
    }
}

#[test]
fn a_user_is_required_to_build_a_manager() {
    let err = PgManager::from_url("postgres://127.0.0.1/test").expect_err("no user");
    assert!(err.to_string().contains("user"), "{err}");
}

#[test]
fn a_missing_ca_file_is_refused_at_build_time() {
    let err = PgManager::from_url(
        "postgres://u@127.0.0.1/test?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
    )
    .expect_err("missing CA file");
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}

#[test]
fn tidepool_pooler_in_the_url_turns_on_pooler_mode_and_the_builder_wins_over_it() {
    let on = "postgres://app@127.0.0.1:6432/app?tidepool_pooler=true";
    assert_eq!(
        PgConfig::from_url(on).unwrap().get_transaction_pooler(),
        Some(true)
    );
    assert!(PgManager::from_url(on).unwrap().is_transaction_pooler());
    assert!(!PgManager::from_url("postgres://app@127.0.0.1/app")
        .unwrap()
        .is_transaction_pooler());
    let off = PgManager::builder_from_url(on)
        .unwrap()
        .transaction_pooler(false)
        .build()
        .unwrap();
    assert!(!off.is_transaction_pooler());
    let err = PgConfig::from_url("postgres://app@h/app?tidepool_pooler=maybe").unwrap_err();
    assert!(err.to_string().contains("tidepool_pooler"), "{err}");
}
