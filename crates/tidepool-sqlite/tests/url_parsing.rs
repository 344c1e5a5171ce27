//! `sqlite:` URLs: every documented form parses, and every malformed one is
//! refused with a typed error that names what was wrong.

use std::path::PathBuf;
use std::time::Duration;

use tidepool::{Classify, FailureKind};
use tidepool_sqlite::{
    BeginMode, JournalMode, OpenMode, SqliteConfig, SqliteError, Synchronous, Target,
};

fn parse(url: &str) -> SqliteConfig {
    SqliteConfig::from_url(url).unwrap_or_else(|e| panic!("{url} should parse: {e}"))
}

fn refuse(url: &str) -> SqliteError {
    match SqliteConfig::from_url(url) {
        Ok(cfg) => panic!("{url} should be refused, parsed as {cfg:?}"),
        Err(e) => e,
    }
}

#[test]
fn file_urls_in_every_form_name_the_path() {
    assert_eq!(
        parse("sqlite://data/app.db").target(),
        &Target::File("data/app.db".into())
    );
    assert_eq!(
        parse("sqlite:data/app.db").target(),
        &Target::File("data/app.db".into())
    );
    assert_eq!(
        parse("sqlite:///var/lib/app.db").target(),
        &Target::File("/var/lib/app.db".into())
    );
    assert_eq!(
        parse("sqlite://my%20data/a%25b.db").target(),
        &Target::File(PathBuf::from("my data/a%b.db"))
    );
}

#[test]
fn memory_urls_name_an_in_memory_database() {
    assert_eq!(parse("sqlite::memory:").target(), &Target::Memory);
    assert_eq!(parse("sqlite://:memory:").target(), &Target::Memory);
    assert!(!parse("sqlite::memory:?foreign_keys=off").get_foreign_keys());
}

#[test]
fn files_default_to_wal_normal_sync_five_second_busy_timeout_and_foreign_keys() {
    let cfg = parse("sqlite://app.db");
    assert_eq!(cfg.get_journal_mode(), Some(JournalMode::Wal));
    assert_eq!(cfg.get_synchronous(), Some(Synchronous::Normal));
    assert_eq!(cfg.get_busy_timeout(), Duration::from_secs(5));
    assert!(cfg.get_foreign_keys());
    assert_eq!(cfg.get_open_mode(), OpenMode::ReadWriteCreate);
    assert_eq!(cfg.get_begin_mode(), BeginMode::Deferred);
    assert_eq!(parse("sqlite::memory:").get_journal_mode(), None);
}

#[test]
fn every_option_is_read() {
    let cfg = parse(
        "sqlite://app.db?journal_mode=truncate&busy_timeout=250&foreign_keys=false&synchronous=full&mode=rw&begin=immediate",
    );
    assert_eq!(cfg.get_journal_mode(), Some(JournalMode::Truncate));
    assert_eq!(cfg.get_busy_timeout(), Duration::from_millis(250));
    assert!(!cfg.get_foreign_keys());
    assert_eq!(cfg.get_synchronous(), Some(Synchronous::Full));
    assert_eq!(cfg.get_open_mode(), OpenMode::ReadWrite);
    assert_eq!(cfg.get_begin_mode(), BeginMode::Immediate);
    assert_eq!(
        parse("sqlite:a.db?busy_timeout=2s").get_busy_timeout(),
        Duration::from_secs(2)
    );
    assert_eq!(
        parse("sqlite:a.db?busy_timeout=75ms").get_busy_timeout(),
        Duration::from_millis(75)
    );
    assert_eq!(
        parse("sqlite:a.db?mode=ro").get_open_mode(),
        OpenMode::ReadOnly
    );
}

#[test]
fn a_url_of_another_scheme_is_refused_without_echoing_its_password() {
    let err = refuse("postgres://app:p@ss:w%rd@db/x");
    assert!(matches!(err, SqliteError::InvalidUrl { .. }), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("postgres"), "{shown}");
    assert!(
        !shown.contains("p@ss") && !shown.contains("w%rd"),
        "{shown}"
    );
    assert!(matches!(refuse("app.db"), SqliteError::InvalidUrl { .. }));
    assert!(matches!(
        refuse("sqlite3://app.db"),
        SqliteError::InvalidUrl { .. }
    ));
}

#[test]
fn a_url_without_a_database_is_refused() {
    for url in ["sqlite:", "sqlite://", "sqlite://?mode=rw"] {
        let err = refuse(url);
        assert!(
            err.to_string().contains("names no database"),
            "{url}: {err}"
        );
    }
}

#[test]
fn bad_percent_encoding_is_refused() {
    for url in [
        "sqlite://a%zz.db",
        "sqlite://a%2",
        "sqlite://a.db?busy_timeout=%G0",
        "sqlite://%ff%fe.db",
    ] {
        let err = refuse(url);
        assert!(
            matches!(err, SqliteError::InvalidUrl { .. }),
            "{url}: {err:?}"
        );
    }
}

#[test]
fn duplicate_and_malformed_options_are_refused_by_name() {
    let cases = [
        ("sqlite://a.db?journal_mode=fast", "journal_mode"),
        ("sqlite://a.db?busy_timeout=soon", "busy_timeout"),
        ("sqlite://a.db?busy_timeout=-1", "busy_timeout"),
        ("sqlite://a.db?foreign_keys=maybe", "foreign_keys"),
        ("sqlite://a.db?synchronous=always", "synchronous"),
        ("sqlite://a.db?mode=memory", "mode"),
        ("sqlite://a.db?begin=later", "begin"),
        ("sqlite://a.db?mode=ro&mode=rw", "mode"),
        ("sqlite::memory:?journal_mode=wal", "journal_mode"),
    ];
    for (url, name) in cases {
        match refuse(url) {
            SqliteError::InvalidOption { name: got, .. } => assert_eq!(got, name, "{url}"),
            other => panic!("{url}: expected InvalidOption, got {other:?}"),
        }
    }
}

#[test]
fn an_unknown_option_is_refused_by_position_without_repeating_it() {
    // An unknown option may be a secret (`?key=...`), so only its position
    // is given, with the list of known options.
    for (url, position) in [
        ("sqlite://a.db?journal=wal", 1),
        ("sqlite://a.db?mode=rw&&busy_timeout=1s&journal=wal", 3),
    ] {
        match refuse(url) {
            SqliteError::UnknownOption { position: got, .. } => assert_eq!(got, position, "{url}"),
            other => panic!("{url}: expected UnknownOption, got {other:?}"),
        }
    }
    let shown = refuse("sqlite://a.db?journal=wal").to_string();
    assert!(shown.contains("journal_mode"), "{shown}");
    assert!(!shown.contains("journal="), "{shown}");
}

#[test]
fn a_bad_value_of_a_known_option_is_not_repeated_but_the_accepted_ones_are_listed() {
    let shown = refuse("sqlite://a.db?journal_mode=fastest").to_string();
    assert!(!shown.contains("fastest"), "{shown}");
    assert!(
        shown.contains("journal_mode") && shown.contains("wal"),
        "{shown}"
    );
}

#[test]
fn configuration_errors_are_the_callers_own() {
    assert_eq!(refuse("mysql://x").failure_kind(), FailureKind::Client);
    assert!(!refuse("sqlite://a.db?mode=x").is_retryable());
}

#[test]
fn the_config_describes_its_target_for_logs() {
    assert_eq!(
        parse("sqlite://data/app.db").describe(),
        "sqlite://data/app.db"
    );
    assert_eq!(parse("sqlite::memory:").describe(), "sqlite::memory:");
    let parsed: SqliteConfig = "sqlite:x.db".parse().unwrap();
    assert_eq!(parsed, SqliteConfig::file("x.db"));
}
