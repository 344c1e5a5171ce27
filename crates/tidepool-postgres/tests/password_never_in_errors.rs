//! "No password in any error, ever": a canary password, malformed in every
//! way a hand-written connection string gets it wrong (an unencoded `?`,
//! `#`, `/`, `@`, `&`, `%`, a space without quotes, a stray quote), is either
//! parsed correctly or refused with an error whose `Display` and `Debug`
//! never show it. The canary looks like a keyword (letters, digits, `-`,
//! `_`), as short real passwords do.

use proptest::prelude::*;
use tidepool_postgres::{ConfigError, PgConfig, PgManager};

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
    "?sslmode=",
    "&a=",
    "/db?",
];

/// What follows the canary inside the password.
const TAILS: &[&str] = &[
    "", "=1", "@", "?", "/x", "&y=1", "#z", " ", "'", "=", ":5432",
];

/// URL shapes; `{pw}` is where the password goes.
const URLS: &[&str] = &[
    "postgres://app:{pw}@127.0.0.1:5432/db",
    "postgres://app:{pw}@127.0.0.1/db?sslmode=disable",
    "postgresql://app:{pw}@h1:5432,h2:5433/db?application_name=svc&connect_timeout=5",
    "postgres://app:{pw}@[::1]:5432/db",
    "postgres://app:{pw}@/db?host=/var/run/postgresql",
    "postgres://app:{pw}@",
    "postgres://app:{pw}/db",
    "postgres://h/db?user=app&password={pw}",
    "postgres://h/db?password={pw}&sslmode=require",
];

/// key=value shapes; `{pw}` is where the password goes.
const KEY_VALUES: &[&str] = &[
    "host=127.0.0.1 user=app password={pw} dbname=db",
    "password={pw} host=h",
    "host=h password={pw}",
    "host=h password='{pw}' dbname=db",
    "host=h password = {pw} sslmode=disable",
];

/// The canary: a keyword-looking word no message of ours contains.
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
/// with `password`, also that a string that parses holds exactly it.
fn check(input: &str, canary: &str, password: Option<&str>) {
    match input.parse::<PgConfig>() {
        Ok(cfg) => {
            if let Some(pw) = password {
                assert_eq!(cfg.get_password(), Some(pw), "misread {input:?}");
            }
            // Parsed: the canary may only be inside the (redacted) password.
            assert_not_shown(&format!("{cfg:?}"), canary, "config Debug", input);
            assert_not_shown(&cfg.to_string(), canary, "config Display", input);
        }
        Err(e) => {
            assert_not_shown(&e.to_string(), canary, "error Display", input);
            assert_not_shown(&format!("{e:?}"), canary, "error Debug", input);
        }
    }
    match PgManager::from_url(input) {
        Ok(m) => assert_not_shown(&format!("{m:?}"), canary, "manager Debug", input),
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
        // Without `@host`, `app:x@y/db` and `app:1,y/db` *are* URLs for host
        // y: nothing could tell, so that shape takes no `@` or `,`.
        let no_host = URLS[shape].ends_with(":{pw}/db");
        if no_host && pw.contains(['@', ',']) {
            return Ok(());
        }
        // The user-info shapes must read the password whole or refuse it;
        // `%` escapes and a `&` in a query-parameter password change it.
        let whole = URLS[shape].contains(":{pw}@") && !pw.contains('%');
        let url = URLS[shape].replace("{pw}", &pw);
        check(&url, &canary, whole.then_some(pw.as_str()));
        if no_host {
            prop_assert!(url.parse::<PgConfig>().is_err(), "{url} parsed");
        }
    }

    #[test]
    fn a_canary_password_malformed_in_a_key_value_string_never_shows(
        shape in 0..KEY_VALUES.len(),
        head in "[a-z0-9]{0,4}",
        sep in 0..SEPARATORS.len(),
        canary in canary(),
        tail in 0..TAILS.len(),
    ) {
        let pw = format!("{head}{}{canary}{}", SEPARATORS[sep], TAILS[tail]);
        check(&KEY_VALUES[shape].replace("{pw}", &pw), &canary, None);
    }
}

#[test]
fn the_two_strings_from_the_report_do_not_echo_the_secret() {
    for input in [
        "postgres://postgres:2024?Cq-secret_1=1@127.0.0.1/db",
        "password=ab Cq-secret_1=1",
    ] {
        check(input, "Cq-secret_1", None);
    }
    // And the first reads as libpq reads it.
    let cfg: PgConfig = "postgres://postgres:2024?Cq-secret_1=1@127.0.0.1/db"
        .parse()
        .unwrap();
    assert_eq!(cfg.get_password(), Some("2024?Cq-secret_1=1"));
    assert_eq!(cfg.redacted_url(), "postgres://postgres@127.0.0.1:5432/db");
}

#[test]
fn passwords_holding_url_delimiters_parse_whole() {
    for pw in ["a?b=c", "a#b", "a/b", "a@b", "a:b", "a@b/c#d", "a?b#c&d=e"] {
        let cfg: PgConfig = format!("postgres://app:{pw}@db:5432/orders?sslmode=disable")
            .parse()
            .unwrap_or_else(|e| panic!("{pw}: {e}"));
        assert_eq!(cfg.get_password(), Some(pw));
        assert_eq!(cfg.redacted_url(), "postgres://app@db:5432/orders");
    }
}

#[test]
fn a_password_holding_both_a_question_mark_and_a_slash_is_refused_unseen() {
    let err = "postgres://app:Cq1?x/y@db/orders"
        .parse::<PgConfig>()
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("Cq1"), "{err}");
}

#[test]
fn a_value_in_the_environment_is_never_echoed() {
    let env = |name: &str| match name {
        "PGPORT" => Some("Cq-secret_1".to_string()),
        "PGSSLMODE" => Some("Cq-secret_2".to_string()),
        _ => None,
    };
    let err = PgConfig::from_env_with(env).unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("PGPORT"), "{shown}");
    assert!(!shown.contains("Cq-secret"), "{shown}");
}

#[test]
fn an_unknown_parameter_is_named_by_its_position_not_its_text() {
    let err = "postgres://u@h/db?sslmode=disable&colour=blue"
        .parse::<PgConfig>()
        .unwrap_err();
    assert!(
        matches!(err, ConfigError::UnknownParameter { position: 2 }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("2nd"), "{text}");
    assert!(!text.contains("colour"), "{text}");
}
