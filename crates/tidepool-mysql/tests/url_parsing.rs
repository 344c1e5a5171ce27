//! `mysql://` URLs: the documented forms parse; malformed ones give a typed
//! error; the password never appears in any error, `Debug` or description.

use tidepool::{Classify, FailureKind};
use tidepool_mysql::{MysqlConfig, MysqlError, MysqlManager, SslMode};

const CANARY: &str = "p@ss:w%rd";
const CANARY_ENCODED: &str = "p%40ss%3Aw%25rd";

fn refuse(url: &str) -> MysqlError {
    match MysqlConfig::from_url(url) {
        Ok(cfg) => panic!("should be refused, parsed as {cfg:?}"),
        Err(e) => e,
    }
}

#[track_caller]
fn assert_no_canary(text: &str) {
    for piece in [
        CANARY,
        CANARY_ENCODED,
        "p@ss",
        "w%rd",
        "ss:w",
        "%40ss",
        "3Aw",
    ] {
        assert!(!text.contains(piece), "{piece:?} leaked in: {text}");
    }
}

#[test]
fn a_full_url_parses_into_every_field() {
    let cfg = MysqlConfig::from_url(&format!(
        "mysql://app:{CANARY_ENCODED}@db.local:3307/shop?ssl-mode=verify_identity"
    ))
    .unwrap();
    assert_eq!(cfg.user(), Some("app"));
    assert_eq!(cfg.password(), Some(CANARY));
    assert_eq!(cfg.host(), "db.local");
    assert_eq!(cfg.port(), 3307);
    assert_eq!(cfg.database(), Some("shop"));
    assert_eq!(cfg.ssl_mode(), SslMode::VerifyIdentity);
}

#[test]
fn defaults_fill_in_port_database_and_tls() {
    let cfg = MysqlConfig::from_url("mariadb://root@localhost").unwrap();
    assert_eq!(
        (cfg.port(), cfg.database(), cfg.password()),
        (3306, None, None)
    );
    assert_eq!(cfg.ssl_mode(), SslMode::Disabled);
    assert_eq!(
        MysqlConfig::from_url("mysql://127.0.0.1/").unwrap().user(),
        None
    );
}

#[test]
fn ipv6_hosts_and_unix_sockets_parse() {
    let v6 = MysqlConfig::from_url("mysql://u@[::1]:3307/db").unwrap();
    assert_eq!((v6.host(), v6.port()), ("::1", 3307));
    assert_eq!(v6.describe(), "mysql://u@[::1]:3307/db");
    let v6_default = MysqlConfig::from_url("mysql://[fe80::1]/db").unwrap();
    assert_eq!((v6_default.host(), v6_default.port()), ("fe80::1", 3306));
    let sock =
        MysqlConfig::from_url("mysql://root@localhost/test?socket=%2Frun%2Fmysqld%2Fmysqld.sock")
            .unwrap();
    assert_eq!(sock.socket(), Some("/run/mysqld/mysqld.sock"));
}

#[test]
fn ssl_modes_parse_and_preferred_is_refused_because_it_downgrades() {
    for (text, mode) in [
        ("disabled", SslMode::Disabled),
        ("REQUIRED", SslMode::Required),
        ("verify-ca", SslMode::VerifyCa),
        ("verify_identity", SslMode::VerifyIdentity),
    ] {
        let cfg = MysqlConfig::from_url(&format!("mysql://h/db?ssl_mode={text}")).unwrap();
        assert_eq!(cfg.ssl_mode(), mode, "{text}");
    }
    let err = refuse("mysql://h/db?ssl-mode=preferred");
    assert!(err.to_string().contains("silently"), "{err}");
    assert!(matches!(
        refuse("mysql://h/db?ssl-mode=sometimes"),
        MysqlError::InvalidOption { .. }
    ));
}

#[test]
fn a_wrong_scheme_is_refused_without_echoing_the_password() {
    let err = refuse(&format!("postgres://app:{CANARY_ENCODED}@h/db"));
    assert!(matches!(err, MysqlError::InvalidUrl { .. }));
    assert!(err.to_string().contains("postgres"), "{err}");
    assert_no_canary(&format!("{err} {err:?}"));
    assert!(matches!(
        refuse("127.0.0.1:3306"),
        MysqlError::InvalidUrl { .. }
    ));
}

#[test]
fn ports_outside_1_to_65535_are_refused() {
    for port in ["0", "65536", "99999999999", "-1", "http"] {
        let err = refuse(&format!("mysql://app:{CANARY_ENCODED}@h:{port}/db"));
        assert!(
            matches!(err, MysqlError::InvalidUrl { .. }),
            "{port}: {err:?}"
        );
        assert!(err.to_string().contains("port"), "{err}");
        assert_no_canary(&format!("{err} {err:?}"));
    }
    assert_eq!(
        MysqlConfig::from_url("mysql://h:65535/db").unwrap().port(),
        65535
    );
    assert_eq!(MysqlConfig::from_url("mysql://h:1/db").unwrap().port(), 1);
}

#[test]
fn bad_percent_encoding_is_refused_without_echoing_the_password() {
    // The raw canary: `%rd` is not a valid escape.
    let err = refuse(&format!("mysql://app:{CANARY}@h/db"));
    assert!(
        err.to_string().contains("percent-encoding in the password"),
        "{err}"
    );
    assert_no_canary(&format!("{err} {err:?}"));
    for url in [
        "mysql://a%zz@h/db",
        "mysql://h/d%2",
        "mysql://h/db?ssl-mode=%GG",
        "mysql://app:%ff%fe@h/db",
    ] {
        assert!(
            matches!(refuse(url), MysqlError::InvalidUrl { .. }),
            "{url}"
        );
    }
}

#[test]
fn unknown_options_are_refused_by_position_and_repeated_ones_by_name() {
    match refuse("mysql://h/db?ssl-mode=disabled&pool_max=5") {
        MysqlError::UnknownOption { position } => assert_eq!(position, 2),
        other => panic!("{other:?}"),
    }
    match refuse("mysql://h/db?ssl-mode=required&ssl_mode=disabled") {
        MysqlError::InvalidOption { name, reason } => {
            assert_eq!(name, "ssl-mode");
            assert!(reason.contains("more than once"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_password_never_shows_in_debug_or_descriptions() {
    let cfg = MysqlConfig::from_url(&format!("mysql://app:{CANARY_ENCODED}@h:3306/db")).unwrap();
    let manager = MysqlManager::new(cfg.clone());
    let shown = format!(
        "{cfg:?} {manager:?} {}",
        tidepool::Manager::describe(&manager)
    );
    assert_no_canary(&shown);
    assert!(shown.contains("<redacted>"), "{shown}");
    assert_eq!(
        tidepool::Manager::describe(&manager),
        "mysql://app@h:3306/db"
    );
}

#[test]
fn url_errors_are_the_callers_own_and_not_retryable() {
    let err = refuse("mysql://h:0/db");
    assert_eq!(err.failure_kind(), FailureKind::Client);
    assert!(!err.is_retryable_connect());
    assert!(!err.is_retryable_statement());
}

#[test]
fn the_config_can_be_built_from_fields() {
    let cfg = MysqlConfig::new()
        .with_host("::1")
        .with_port(3310)
        .with_user("u")
        .with_password(CANARY)
        .with_database("d");
    assert_eq!(cfg.describe(), "mysql://u@[::1]:3310/d");
    assert_no_canary(&format!("{cfg:?}"));
}
