//! A `MysqlConfig` from the MySQL clients' environment variables (through a
//! lookup closure, so no test touches the process environment) and, with
//! the `serde` feature, from a config file; the password in neither
//! `Debug` nor `Serialize` output nor any error.

use std::collections::HashMap;
use std::path::Path;

use tidepool_mysql::{MysqlConfig, MysqlError, SslMode};

fn from(env: &[(&str, &str)]) -> Result<MysqlConfig, MysqlError> {
    let env: HashMap<&str, &str> = env.iter().copied().collect();
    MysqlConfig::from_env_with(|name| env.get(name).map(|v| v.to_string()))
}

#[test]
fn the_clients_variables_set_host_port_and_password() {
    let cfg = from(&[
        ("MYSQL_HOST", "db.local"),
        ("MYSQL_TCP_PORT", "3307"),
        ("MYSQL_PWD", "Cq-env-secret"),
        ("MYSQL_UNIX_PORT", "/run/mysqld/mysqld.sock"),
        // Docker's first-start variables are not the client's.
        ("MYSQL_USER", "docker-user"),
        ("MYSQL_DATABASE", "docker-db"),
    ])
    .unwrap();
    assert_eq!((cfg.host(), cfg.port()), ("db.local", 3307));
    assert_eq!(cfg.password(), Some("Cq-env-secret"));
    // The socket is for the local server only, as in the clients.
    assert_eq!(cfg.socket(), None);
    assert_eq!((cfg.user(), cfg.database()), (None, None));
    assert!(!format!("{cfg:?} {}", cfg.describe()).contains("Cq-env-secret"));
}

#[test]
fn the_socket_variable_is_used_for_the_local_server() {
    let cfg = from(&[("MYSQL_UNIX_PORT", "/run/mysqld/mysqld.sock")]).unwrap();
    assert_eq!(cfg.socket(), Some("/run/mysqld/mysqld.sock"));
    let cfg = from(&[]).unwrap();
    assert_eq!(
        (cfg.host(), cfg.port(), cfg.socket()),
        ("127.0.0.1", 3306, None)
    );
}

#[test]
fn a_bad_value_names_its_variable_and_not_the_value() {
    for (var, value) in [
        ("MYSQL_TCP_PORT", "Cq-not-a-port"),
        ("MYSQL_TCP_PORT", "0"),
        ("MYSQL_HOST", "Cq host/with:junk"),
    ] {
        let err = from(&[(var, value)]).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(
            matches!(&err, MysqlError::Env { var: v, .. } if *v == var),
            "{shown}"
        );
        assert!(!shown.contains("Cq"), "{shown}");
    }
}

#[cfg(feature = "serde")]
mod serde_form {
    use super::*;

    #[test]
    fn a_config_file_reads_the_option_names() {
        let cfg: MysqlConfig = toml::from_str(
            r#"
            host = "db.local"
            port = 3307
            user = "app"
            password = "Cq-file-secret"
            database = "shop"
            ssl-mode = "verify_identity"
            ssl_ca = "/etc/mysql/ca.pem"
            ssl-cert = "/etc/mysql/app.crt"
            ssl-key = "/etc/mysql/app.key"
            stmt_cache_size = 64
            "#,
        )
        .unwrap();
        assert_eq!((cfg.host(), cfg.port()), ("db.local", 3307));
        assert_eq!(cfg.password(), Some("Cq-file-secret"));
        assert_eq!(cfg.database(), Some("shop"));
        assert_eq!(cfg.ssl_mode(), SslMode::VerifyIdentity);
        assert_eq!(cfg.ssl_key(), Some(Path::new("/etc/mysql/app.key")));
        assert_eq!(cfg.stmt_cache_size(), 64);
        assert!(!format!("{cfg:?}").contains("Cq-file-secret"));
    }

    #[test]
    fn serializing_leaves_the_password_out_and_reads_back_the_rest() {
        let cfg = MysqlConfig::from_url(
            "mysql://app:Cq-ser-secret@db.local:3307/shop?ssl-mode=required&stmt-cache-size=8",
        )
        .unwrap();
        let json = serde_json::to_string(&cfg).unwrap();
        assert!(!json.contains("Cq-ser-secret"), "{json}");
        let back: MysqlConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back.with_password("Cq-ser-secret"), cfg);
    }

    #[test]
    fn no_deserialization_error_shows_a_password() {
        for json in [
            r#"{"password": 1.5e300}"#,
            r#"{"password": false}"#,
            r#"{"url": "mysql://app:2024?Cq-url-secret@127.0.0.1:3306/test?x=1"}"#,
            r#"{"url": "mysql://app:Cq-url-secret@h:99999/test"}"#,
            r#"{"ssl_mode": "Cq-url-secret"}"#,
        ] {
            let err = serde_json::from_str::<MysqlConfig>(json).unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("Cq-"), "{json}: {shown}");
            assert!(
                !shown.contains("1.5e300") && !shown.contains("false"),
                "{json}: {shown}"
            );
        }
    }
}
