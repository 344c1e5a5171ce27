//! "No password in any error, ever": a canary password, malformed in every
//! way a hand-written `mysql://` URL gets it wrong (an unencoded `?`, `#`,
//! `/`, `@`, `&`, `%`, a space), is either parsed correctly or refused with
//! an error whose `Display` and `Debug` never show it. The canary looks
//! like a keyword (letters, digits, `-`, `_`), as short passwords do.

use proptest::prelude::*;
use tidepool_mysql::{MysqlConfig, MysqlError};

/// What a user typed by mistake around or inside the password.
const SEPARATORS: &[&str] = &[
    "",
    "?",
    "#",
    "/",
    "@",
    ":",
    "&",
    "=",
    "?x=",
    " ",
    ",",
    "'",
    "\\",
    "%",
    "%2",
    "[",
    "]",
    "@h/",
    "?ssl-mode=",
    "?stmt-cache-size=",
    "&a=",
    "/db?",
];

/// What follows the canary inside the password.
const TAILS: &[&str] = &[
    "", "=1", "@", "?", "/x", "&y=1", "#z", " ", "'", "=", ":3306",
];

/// URL shapes; `{pw}` is where the password goes.
const URLS: &[&str] = &[
    "mysql://app:{pw}@127.0.0.1:3306/test",
    "mysql://app:{pw}@127.0.0.1/test?ssl-mode=disabled",
    "mariadb://app:{pw}@db.local:3307/test?stmt-cache-size=8&ssl-mode=required",
    "mysql://app:{pw}@[::1]:3306/test",
    "mysql://app:{pw}@localhost/test?socket=%2Frun%2Fmysqld%2Fmysqld.sock",
    "mysql://app:{pw}@",
    "mysql://app:{pw}/test",
];

fn canary() -> impl Strategy<Value = String> {
    "[a-z0-9_-]{3,10}".prop_map(|s| format!("Cq{s}"))
}

fn assert_not_shown(text: &str, canary: &str, what: &str, input: &str) {
    assert!(
        !text.contains(canary),
        "the canary {canary:?} shows in the {what} for {input:?}: {text}"
    );
}

/// Everything a caller could print about the outcome of parsing `input`;
/// with `password`, also that a URL that parses holds exactly it.
fn check(input: &str, canary: &str, password: Option<&str>) {
    match MysqlConfig::from_url(input) {
        Ok(cfg) => {
            if let Some(pw) = password {
                assert_eq!(cfg.password(), Some(pw), "misread {input:?}");
            }
            assert_not_shown(&format!("{cfg:?}"), canary, "config Debug", input);
            assert_not_shown(&cfg.describe(), canary, "description", input);
        }
        Err(e) => {
            assert_not_shown(&e.to_string(), canary, "error Display", input);
            assert_not_shown(&format!("{e:?}"), canary, "error Debug", input);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn a_canary_password_malformed_in_a_url_never_shows(
        shape in 0..URLS.len(),
        head in "[a-z0-9]{0,4}",
        sep in 0..SEPARATORS.len(),
        canary in canary(),
        tail in 0..TAILS.len(),
    ) {
        let pw = format!("{head}{}{canary}{}", SEPARATORS[sep], TAILS[tail]);
        // Without `@host`, `app:x@y/db` *is* a URL for host y: nothing
        // could tell, so that shape takes no `@`.
        let no_host = URLS[shape].ends_with(":{pw}/test");
        if no_host && pw.contains('@') {
            return Ok(());
        }
        // The user-info shapes must read the password whole or refuse it
        // (`%` escapes change it).
        let whole = URLS[shape].contains(":{pw}@") && !pw.contains('%');
        let url = URLS[shape].replace("{pw}", &pw);
        check(&url, &canary, whole.then_some(pw.as_str()));
        if no_host {
            prop_assert!(MysqlConfig::from_url(&url).is_err(), "{url} parsed");
        }
    }
}

#[test]
fn the_url_from_the_report_does_not_echo_the_secret() {
    check(
        "mysql://app:2024?Cq-secret_1@127.0.0.1:3306/test",
        "Cq-secret_1",
        None,
    );
    let cfg = MysqlConfig::from_url("mysql://app:2024?Cq-secret_1@127.0.0.1:3306/test").unwrap();
    assert_eq!(cfg.password(), Some("2024?Cq-secret_1"));
    assert_eq!(cfg.describe(), "mysql://app@127.0.0.1:3306/test");
}

#[test]
fn option_values_are_never_echoed() {
    for url in [
        "mysql://h/db?ssl-mode=Cq-secret_1",
        "mysql://h/db?stmt-cache-size=Cq-secret_1",
        "mysql://h/db?Cq-secret_1=1",
        "mysql://h/db?Cq-secret_1=1&Cq-secret_1=2",
        "Cq-secret_1://h/db",
        "mysql://h:Cq-secret_1/db",
        "mysql://h:99999/db",
    ] {
        let err = MysqlConfig::from_url(url).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("Cq-secret_1"), "{url}: {shown}");
        assert!(!shown.contains("99999"), "{url}: {shown}");
    }
}

#[test]
fn an_unknown_option_is_named_by_its_position() {
    let err = MysqlConfig::from_url("mysql://h/db?ssl-mode=disabled&colour=blue").unwrap_err();
    assert!(
        matches!(err, MysqlError::UnknownOption { position: 2 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("2nd"), "{err}");
}
