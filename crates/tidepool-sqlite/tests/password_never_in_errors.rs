//! "No password in any error, ever", for `sqlite:` URLs.
//!
//! A SQLite URL carries no secret: there is no user, no password and no
//! key option (this crate builds plain SQLite, not SQLCipher). A secret can
//! still reach the parser by mistake: a server URL handed to the SQLite
//! driver, a `user:password@host` written after `sqlite://`, a `key=` or
//! `password=` option out of habit, or a password pasted into any other slot.
//! So a canary is put in every position of a URL — scheme, user info, path,
//! option names, option values, fragment — malformed in every way a
//! hand-written URL gets it wrong, and no error's `Display` or `Debug` may
//! show it. Errors never repeat what the caller typed: not an unknown
//! option's name or value, not a known option's bad value, not an unknown
//! scheme. (A path that parses is echoed by design — it is what SQLite could
//! not open — and is not a secret; one shaped like `user:password@host` is
//! refused before it gets that far.)

use proptest::prelude::*;
use tidepool_sqlite::{JournalMode, SqliteConfig, SqliteError, SqliteManager, Synchronous};

/// What a user typed by mistake around or inside the secret.
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
    "%zz",
    "%3D",
    "[",
    "]",
    "@h/",
    "&key=",
    "?mode=",
    "&busy_timeout=",
    ";",
    "\0",
];

/// What follows the canary.
const TAILS: &[&str] = &[
    "", "=1", "@", "?", "/x", "&y=1", "#z", " ", "'", "=", ":5432", "@host/db", "%", "&mode=rw",
];

/// URL shapes; `{pw}` is where the secret goes.
const URLS: &[&str] = &[
    // Server URLs given to the SQLite driver.
    "postgres://app:{pw}@127.0.0.1:5432/db",
    "mysql://root:{pw}@localhost/test",
    "mariadb://root:{pw}@localhost/test",
    "postgresql://h/db?user=app&password={pw}",
    "app:{pw}@127.0.0.1/db",
    "{pw}@127.0.0.1/db",
    "//app:{pw}@127.0.0.1/db",
    "{pw}",
    "{pw}:x",
    // User info written into a sqlite URL.
    "sqlite://app:{pw}@localhost/app.db",
    "sqlite://:{pw}@/app.db",
    "sqlite:app:{pw}@app.db",
    "sqlite:///var/lib/app:{pw}@h.db",
    // Secret-looking options SQLite does not have.
    "sqlite://app.db?key={pw}",
    "sqlite://app.db?password={pw}",
    "sqlite://app.db?mode=rw&key={pw}",
    "sqlite:///abs/app.db?cipher=aes&key={pw}&busy_timeout=5s",
    "sqlite::memory:?password={pw}",
    "sqlite://app.db?{pw}",
    "sqlite://app.db?{pw}=1",
    "sqlite://app.db?journal_mode=wal&{pw}",
    // The secret where a known option's value goes.
    "sqlite://app.db?journal_mode={pw}",
    "sqlite://app.db?busy_timeout={pw}",
    "sqlite://app.db?foreign_keys={pw}",
    "sqlite://app.db?synchronous={pw}",
    "sqlite://app.db?mode={pw}",
    "sqlite://app.db?begin={pw}",
    "sqlite::memory:?journal_mode={pw}",
    // The secret in a fragment or a malformed path.
    "sqlite://app.db#{pw}",
    "sqlite://app.db?mode=ro#{pw}",
    "sqlite://%zz{pw}.db",
    "sqlite://{pw}%ff.db",
    "sqlite://a\0{pw}.db",
];

/// The canary: a keyword-looking word no message of ours contains (no
/// message of ours has an upper-case `Q`).
fn canary() -> impl Strategy<Value = String> {
    "[a-z0-9_-]{3,10}".prop_map(|s| format!("Qz{s}"))
}

fn assert_not_shown(text: &str, canary: &str, what: &str, input: &str) {
    assert!(
        !text.contains(canary),
        "the canary {canary:?} shows in the {what} for {input:?}: {text}"
    );
}

fn assert_error_hides(e: &SqliteError, canary: &str, input: &str) {
    assert_not_shown(&e.to_string(), canary, "error Display", input);
    assert_not_shown(&format!("{e:?}"), canary, "error Debug", input);
    assert_not_shown(&format!("{e:#?}"), canary, "error pretty Debug", input);
}

/// Everything a caller could print about the outcome of parsing `input`.
fn check(input: &str, canary: &str) {
    if let Err(e) = SqliteConfig::from_url(input) {
        assert_error_hides(&e, canary, input);
    }
    if let Err(e) = input.parse::<SqliteConfig>() {
        assert_error_hides(&e, canary, input);
    }
    if let Err(e) = SqliteManager::from_url(input) {
        assert_error_hides(&e, canary, input);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn a_canary_secret_malformed_anywhere_in_a_url_never_shows_in_an_error(
        shape in 0..URLS.len(),
        head in "[a-z0-9]{0,4}",
        sep in 0..SEPARATORS.len(),
        canary in canary(),
        tail in 0..TAILS.len(),
    ) {
        let pw = format!("{head}{}{canary}{}", SEPARATORS[sep], TAILS[tail]);
        check(&URLS[shape].replace("{pw}", &pw), &canary);
    }

    #[test]
    fn a_canary_percent_encoded_in_any_slot_never_shows_in_an_error(
        shape in 0..URLS.len(),
        canary in canary(),
        tail in 0..TAILS.len(),
    ) {
        // Every byte escaped: what the parser decodes is the canary itself.
        let encoded: String = format!("{canary}{}", TAILS[tail])
            .bytes()
            .map(|b| format!("%{b:02X}"))
            .collect();
        check(&URLS[shape].replace("{pw}", &encoded), &canary);
    }

    #[test]
    fn arbitrary_text_around_a_canary_never_makes_an_error_show_it(
        before in "\\PC{0,24}",
        canary in canary(),
        after in "\\PC{0,24}",
    ) {
        for prefix in ["", "sqlite:", "sqlite://", "sqlite://a.db?", "sqlite://a.db?k="] {
            check(&format!("{prefix}{before}{canary}{after}"), &canary);
        }
    }

    #[test]
    fn a_canary_never_shows_in_the_error_of_a_journal_mode_or_synchronous_value(
        canary in canary(),
    ) {
        match canary.parse::<JournalMode>() {
            Ok(_) => prop_assert!(false, "{canary} parsed as a journal mode"),
            Err(e) => assert_error_hides(&e, &canary, &canary),
        }
        match canary.parse::<Synchronous>() {
            Ok(_) => prop_assert!(false, "{canary} parsed as a synchronous level"),
            Err(e) => assert_error_hides(&e, &canary, &canary),
        }
    }
}

#[test]
fn user_info_in_a_sqlite_url_is_refused_without_echoing_it() {
    for url in [
        "sqlite://app:Qz-s3cret@localhost/app.db",
        "sqlite:app:Qz-s3cret@app.db",
        "sqlite://app:ab/Qz-s3cret@host/db",
    ] {
        match SqliteConfig::from_url(url) {
            Ok(cfg) => panic!("{url} should be refused, parsed as {cfg:?}"),
            Err(e) => {
                assert!(matches!(e, SqliteError::InvalidUrl { .. }), "{url}: {e:?}");
                assert!(e.to_string().contains("user"), "{url}: {e}");
                assert_error_hides(&e, "Qz-s3cret", url);
            }
        }
    }
}

#[test]
fn a_path_containing_a_colon_or_an_at_sign_alone_still_parses() {
    for url in [
        "sqlite://backups/app@2024.db",
        "sqlite:///srv/a:b/app.db",
        "sqlite:///srv/app%3Adata@2024.db",
    ] {
        assert!(SqliteConfig::from_url(url).is_ok(), "{url}");
    }
}

#[test]
fn a_secret_looking_option_is_refused_by_position_and_its_value_is_never_repeated() {
    for (url, position) in [
        ("sqlite://app.db?key=Qz-s3cret", 1),
        ("sqlite://app.db?mode=rw&password=Qz-s3cret", 2),
        ("sqlite://app.db?mode=rw&Qz-s3cret", 2),
    ] {
        match SqliteConfig::from_url(url) {
            Err(e @ SqliteError::UnknownOption { position: got, .. }) => {
                assert_eq!(got, position, "{url}");
                assert_error_hides(&e, "Qz-s3cret", url);
                let shown = e.to_string();
                assert!(
                    shown.contains("journal_mode"),
                    "lists the known options: {shown}"
                );
            }
            other => panic!("{url}: expected UnknownOption, got {other:?}"),
        }
    }
}
