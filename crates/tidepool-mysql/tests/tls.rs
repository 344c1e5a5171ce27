//! TLS is never silently downgraded: when `ssl-mode` asks for TLS, the
//! connection is encrypted or it fails with a typed, non-retryable error.

use tidepool::{Classify, FailureKind, Manager, Queryable, Value};
use tidepool_mysql::MysqlManager;

mod support;

#[tokio::test]
async fn ssl_mode_required_never_falls_back_to_plain_text() {
    let Some(url) = support::url("mysql_tls_required") else {
        return;
    };
    let mut plain = support::connect(&url).await;
    let have_ssl = plain
        .query_one("SELECT @@have_ssl AS s", &[])
        .await
        .unwrap();
    let server_offers_tls = have_ssl.get("s") == Some(&Value::Text("YES".into()));

    let manager = MysqlManager::from_url(&format!("{url}?ssl-mode=required")).unwrap();
    match manager.connect().await {
        Ok(mut conn) => {
            assert!(
                server_offers_tls,
                "connected although the server has no TLS"
            );
            let row = conn
                .query_one("SHOW SESSION STATUS LIKE 'Ssl_cipher'", &[])
                .await
                .unwrap();
            let cipher = row
                .get(1)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            assert!(!cipher.is_empty(), "the session is encrypted");
        }
        Err(err) => {
            assert!(
                !server_offers_tls,
                "TLS failed although the server offers it: {err}"
            );
            assert_eq!(err.failure_kind(), FailureKind::Connect, "{err:?}");
            assert!(!manager.is_retryable(&err), "{err:?}");
        }
    }
}
