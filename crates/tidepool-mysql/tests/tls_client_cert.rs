//! Client certificates for MySQL/MariaDB (`ssl-cert` + `ssl-key`, through
//! mysql_async's rustls support): the options reach the driver, a
//! certificate is refused without its key or without TLS, and against the
//! local MariaDB (TLS from .ci/setup-mariadb.sh, which trusts only its own
//! CA) the certificate is really presented: the server refuses one it does
//! not trust. A PKCS#8 key, which mysql_async cannot read, and a missing
//! file are configuration errors, never retried, that never show the key.

use std::path::{Path, PathBuf};

use tidepool::Manager;
use tidepool_mysql::{MysqlConfig, MysqlError, MysqlManager, SslMode};

mod support;

/// A throwaway self-signed client certificate no server trusts.
const UNTRUSTED_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIDKzCCAhOgAwIBAgIUKPXWsH1UhLS9Vk7Oyx2wyrswkYMwDQYJKoZIhvcNAQEL
BQAwJDEiMCAGA1UEAwwZdGlkZXBvb2wgdW50cnVzdGVkIGNsaWVudDAgFw0yNjEx
MzAxMDMyMjhaGA8yMTI2MTEwNjEwMzIyOFowJDEiMCAGA1UEAwwZdGlkZXBvb2wg
dW50cnVzdGVkIGNsaWVudDCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEB
AJd/YRd6VXkgDcWwA1FEysLGtd4Jk9/FzgaNZAxq0ktStihjtPwJj6a6TuBbrdeB
ZMxz1yDTiWc10XgeJhfbKL/Urx2ugD09JiAyyHW5FfHlbbl5DaxNp/6R62FbGiIN
igU9owKDUANQf7cgjO+W+GSz81F6dSUwa/Q09xTTq3V4pLiz4GVQIh0Qx1V0nU+7
OJGMvJYqKa/r6PwPOjLLfbQIWzBk6wON6styd+clbCpT1VTJWTbUErU+IiFVlyDU
KnkO19W9Mq4VDo4HgiZaHQYCgnz9YkMNLRPUy8jPrxFtJdsNJDsx3NEl24kp8tK/
dZ913mHIFOvKrM5ay48g8X8CAwEAAaNTMFEwHQYDVR0OBBYEFKQNO8yGy/MwHshP
tq1cOaFW36ZCMB8GA1UdIwQYMBaAFKQNO8yGy/MwHshPtq1cOaFW36ZCMA8GA1Ud
EwEB/wQFMAMBAf8wDQYJKoZIhvcNAQELBQADggEBAJTA/tLoT/21hj/4pd5kc/7m
9u1tbh1ZzWD0+H11ahO92dNBrV0v6y4AYkjmqRncoHbfJzBxKrEFn2KAqrgyJZ3N
8AFNcBpoj1JaPVq1d7zZHwa6ifRNS/RXnUMI4FLCK6YFW9xdKDLjO8wTSo/iH+HA
UpzZQVYnYb0N7dkQV4uWfQoNDt6TvBeTOvWVGHJ8p6IH4oIkQVRlO7HWeoEmWH9N
XPWRVyU5tlNXJUQNUcDA5RJzvgifKVGn8HzrZc7e+8tBU0YninX7QI7QsYu7dzCh
0lAptaSrAag5cG7mJtV3ygO37riKABQhtALVcP/JjzNDdqPC/BvQXPHJdyIKlUk=
-----END CERTIFICATE-----
";

/// Its key in PKCS#1 PEM, the form mysql_async reads.
const UNTRUSTED_KEY_PKCS1: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEogIBAAKCAQEAl39hF3pVeSANxbADUUTKwsa13gmT38XOBo1kDGrSS1K2KGO0
/AmPprpO4Fut14FkzHPXINOJZzXReB4mF9sov9SvHa6APT0mIDLIdbkV8eVtuXkN
rE2n/pHrYVsaIg2KBT2jAoNQA1B/tyCM75b4ZLPzUXp1JTBr9DT3FNOrdXikuLPg
ZVAiHRDHVXSdT7s4kYy8liopr+vo/A86Mst9tAhbMGTrA43qy3J35yVsKlPVVMlZ
NtQStT4iIVWXINQqeQ7X1b0yrhUOjgeCJlodBgKCfP1iQw0tE9TLyM+vEW0l2w0k
OzHc0SXbiSny0r91n3XeYcgU68qszlrLjyDxfwIDAQABAoIBAEdYDlIvIzdid/nj
9Pv9qHrnd1g0LHZSQb7mMPqEB7q/HdeRdPbITeUXkfOoWQrG/cAmwWXNGMUJHDc0
A35ykBMexsT0m6G7PUwmfi6qVgJPqEeTEXRWMcn5z95ON9VXiOsE5tJVIoYdD7ge
1SAzeZB7ChgR0j8MOZqMotsk/3bW+0Josa8OKr5TH25IhEao8itUPQZP/NkwEmnm
mgbl47RZGbRRI6JvPG8x29A/ydX0F9w7MjXSbfbRuSV2vNrFoEgyFS3ObrSUCXC/
Jz3OpQ2WvyhCUF2V02w3iqjo8MWRulY2/u2in1NLcl9wxNmpHqlLBgvDCkl1TGPp
IJu81xkCgYEAx8EXIcxLlsq/xvi99ZRpN9yF+DOXRjtcHr1Aao9cAW56lN5V5i1J
UhVROD/rlGK6F40drTiUiOFhBPu8WIXqCoTsSzklXYxC8cNlwKeIRs2k+KRTdATi
KkCynL9BcHnhQwk5psgs++dwyMqx7MXNqdqMZOmWI/I9ZF4KQbNs2KMCgYEAwifL
9RI88RO9/OAAttF/oilfhIk4Apvc3A3pDEKpYsnQlHc+xaJ+TdK4J4ohoUCYo8G5
Cg4edffMjtDxkokCs54mGsaeDKHLOkoTSSoIL1pzNvUHH/y0WL/ZPbC7FII1UJWL
rnMDtZccQQeNbg3066AzwltlJOunQ2bv8THqRXUCgYBFwKp4NeOrW09OhqumptV7
GTl662EGuFG5tjJZQ4hIQ7DwbRcn0maJEEKVVtTHsxXyhWd4hopvpewAFnu1mcWZ
OMNenSzsFr+FtsrAVIAk4UibPp6Zo97qDD+StsJ+KUE87GrCT6JNsIrUwtsQqB3i
Exv1XQ/9q2g+tQv111bJ6wKBgGg2hkJIBM/9ocee0KNQdeqrvGpeYOL9mCHBkaqU
CWlOHBfknZvlaVgKV/BZM03jZ0rWi6S7CVyWooSx4EigJAQXSiqrG2B6Y6Qo6Isn
9Xa9XQRNpwJjWMYeS9PSDcinT0iuzGfZsk8BChhZnm9JLIJg3gdfmT2lA4WpNfdH
rJCVAoGAH8ah/eDA33aTyIaoO3SHsO7RQGYVxvttBf1KXEEDNk1oA48tZZ3xZ9b7
ESrs2NKv85Raf0W+0sIuVwEsvppjJrUR1P93rU6SZY2RylpbM7+Gw0lCvZApNz+O
gPeG9qRHBgXFzwGsT7Q1xOmzX/Fy6dddt2win06I0zCK9ZsnNkE=
-----END RSA PRIVATE KEY-----
";

/// The same key in PKCS#8 PEM (openssl's default), which it cannot read.
const UNTRUSTED_KEY_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCXf2EXelV5IA3F
sANRRMrCxrXeCZPfxc4GjWQMatJLUrYoY7T8CY+muk7gW63XgWTMc9cg04lnNdF4
HiYX2yi/1K8droA9PSYgMsh1uRXx5W25eQ2sTaf+kethWxoiDYoFPaMCg1ADUH+3
IIzvlvhks/NRenUlMGv0NPcU06t1eKS4s+BlUCIdEMdVdJ1PuziRjLyWKimv6+j8
Dzoyy320CFswZOsDjerLcnfnJWwqU9VUyVk21BK1PiIhVZcg1Cp5DtfVvTKuFQ6O
B4ImWh0GAoJ8/WJDDS0T1MvIz68RbSXbDSQ7MdzRJduJKfLSv3Wfdd5hyBTryqzO
WsuPIPF/AgMBAAECggEAR1gOUi8jN2J3+eP0+/2oeud3WDQsdlJBvuYw+oQHur8d
15F09shN5ReR86hZCsb9wCbBZc0YxQkcNzQDfnKQEx7GxPSbobs9TCZ+LqpWAk+o
R5MRdFYxyfnP3k431VeI6wTm0lUihh0PuB7VIDN5kHsKGBHSPww5moyi2yT/dtb7
Qmixrw4qvlMfbkiERqjyK1Q9Bk/82TASaeaaBuXjtFkZtFEjom88bzHb0D/J1fQX
3DsyNdJt9tG5JXa82sWgSDIVLc5utJQJcL8nPc6lDZa/KEJQXZXTbDeKqOjwxZG6
Vjb+7aKfU0tyX3DE2akeqUsGC8MKSXVMY+kgm7zXGQKBgQDHwRchzEuWyr/G+L31
lGk33IX4M5dGO1wevUBqj1wBbnqU3lXmLUlSFVE4P+uUYroXjR2tOJSI4WEE+7xY
heoKhOxLOSVdjELxw2XAp4hGzaT4pFN0BOIqQLKcv0FweeFDCTmmyCz753DIyrHs
xc2p2oxk6ZYj8j1kXgpBs2zYowKBgQDCJ8v1EjzxE7384AC20X+iKV+EiTgCm9zc
DekMQqliydCUdz7Fon5N0rgniiGhQJijwbkKDh5198yO0PGSiQKzniYaxp4Mocs6
ShNJKggvWnM29Qcf/LRYv9k9sLsUgjVQlYuucwO1lxxBB41uDfTroDPCW2Uk66dD
Zu/xMepFdQKBgEXAqng146tbT06Gq6am1XsZOXrrYQa4Ubm2MllDiEhDsPBtFyfS
ZokQQpVW1MezFfKFZ3iGim+l7AAWe7WZxZk4w16dLOwWv4W2ysBUgCThSJs+npmj
3uoMP5K2wn4pQTzsasJPok2witTC2xCoHeITG/VdD/2raD61C/XXVsnrAoGAaDaG
QkgEz/2hx57Qo1B16qu8al5g4v2YIcGRqpQJaU4cF+Sdm+VpWApX8FkzTeNnStaL
pLsJXJaihLHgSKAkBBdKKqsbYHpjpCjoiyf1dr1dBE2nAmNYxh5L09INyKdPSK7M
Z9myTwEKGFmeb0ksgmDeB1+ZPaUDhak190eskJUCgYAfxqH94MDfdpPIhqg7dIew
7tFAZhXG+20F/UpcQQM2TWgDjy1lnfFn1vsRKuzY0q/zlFp/Rb7Swi5XASy+mmMm
tRHU/3etTpJljZHKWlszv4bDSUK9kCk3P46A94b2pEcGBcXPAaxPtDXE6bNf8XLp
1123bCKfTojTMIr1myc2QQ==
-----END PRIVATE KEY-----
";

/// The CA file, or None (with a notice) when the setup script has not run.
fn ca(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("TIDEPOOL_MYSQL_CA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/mysql/tidepool-tls/ca.crt"));
    if path.is_file() {
        return Some(path);
    }
    assert!(
        !tidepool_testkit::database_required(),
        "{test}: CA file {} missing; run .ci/setup-mariadb.sh as root",
        path.display()
    );
    eprintln!("SKIPPED {test}: CA file missing (run .ci/setup-mariadb.sh as root)");
    None
}

/// The test server's config over TLS to 127.0.0.1 (the name its
/// certificate holds), or None (test skipped).
fn tls_config(test: &str) -> Option<MysqlConfig> {
    let url = support::url(test)?;
    let ca = ca(test)?;
    Some(
        MysqlConfig::from_url(&url)
            .unwrap()
            .with_host("127.0.0.1")
            .with_ssl_mode(SslMode::VerifyIdentity)
            .with_ssl_ca(ca),
    )
}

/// The fixture files, in a directory of the test's own that goes away
/// with it.
struct Fixtures {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    pkcs8_key: PathBuf,
}

impl Drop for Fixtures {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn fixtures(test: &str) -> Fixtures {
    let dir = std::env::temp_dir().join(format!("tidepool-mysql-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = Fixtures {
        cert: dir.join("client.crt"),
        key: dir.join("client.rsa.key"),
        pkcs8_key: dir.join("client.pk8.key"),
        dir,
    };
    std::fs::write(&files.cert, UNTRUSTED_CERT).unwrap();
    std::fs::write(&files.key, UNTRUSTED_KEY_PKCS1).unwrap();
    std::fs::write(&files.pkcs8_key, UNTRUSTED_KEY_PKCS8).unwrap();
    files
}

fn key_body(pem: &str) -> &str {
    pem.lines().nth(1).unwrap()
}

#[test]
fn the_certificate_and_key_options_reach_the_driver() {
    let cfg = MysqlConfig::from_url(
        "mysql://app@db/shop?ssl-mode=verify_identity&ssl-cert=%2Fetc%2Fapp.crt&ssl_key=/etc/app.key",
    )
    .unwrap();
    assert_eq!(cfg.ssl_cert(), Some(Path::new("/etc/app.crt")));
    assert_eq!(cfg.ssl_key(), Some(Path::new("/etc/app.key")));
    let opts = cfg.to_opts();
    let identity = opts
        .ssl_opts()
        .and_then(|ssl| ssl.client_identity())
        .expect("a client identity");
    assert!(format!("{identity:?}").contains("/etc/app.crt"));
    assert!(format!("{identity:?}").contains("/etc/app.key"));
}

#[test]
fn a_certificate_without_its_key_or_without_tls_is_refused() {
    for url in [
        "mysql://h/db?ssl-mode=required&ssl-cert=/c.crt",
        "mysql://h/db?ssl-mode=required&ssl-key=/c.key",
        "mysql://h/db?ssl-cert=/c.crt&ssl-key=/c.key",
    ] {
        let err = MysqlConfig::from_url(url).unwrap_err();
        assert!(
            matches!(&err, MysqlError::InvalidOption { name, .. } if name == "ssl-cert" || name == "ssl-key"),
            "{url}: {err:?}"
        );
    }
}

#[tokio::test]
async fn the_certificate_is_presented_so_a_server_that_does_not_trust_it_refuses() {
    let Some(config) = tls_config("mysql_client_cert_presented") else {
        return;
    };
    let f = fixtures("presented");
    // Without the certificate the same connection works...
    MysqlManager::new(config.clone()).connect().await.unwrap();
    // ... with it, the server checks it against the only CA it trusts.
    let with_cert = MysqlManager::new(config.with_ssl_cert(&f.cert).with_ssl_key(&f.key));
    let err = with_cert
        .connect()
        .await
        .map(|_| ())
        .expect_err("the server does not trust this certificate");
    assert!(!format!("{err} {err:?}").contains(key_body(UNTRUSTED_KEY_PKCS1)));
}

#[tokio::test]
async fn a_pkcs8_key_is_refused_with_how_to_convert_it_and_not_retried() {
    let Some(config) = tls_config("mysql_client_cert_pkcs8") else {
        return;
    };
    let f = fixtures("pkcs8");
    let manager = MysqlManager::new(config.with_ssl_cert(&f.cert).with_ssl_key(&f.pkcs8_key));
    let err = manager.connect().await.map(|_| ()).unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("PKCS#1"), "{shown}");
    assert!(!shown.contains(key_body(UNTRUSTED_KEY_PKCS8)), "{shown}");
    assert!(!manager.is_retryable(&err), "{shown}");
}

#[tokio::test]
async fn a_missing_key_file_is_a_configuration_error_and_not_retried() {
    let Some(config) = tls_config("mysql_client_cert_missing") else {
        return;
    };
    let f = fixtures("missing");
    let missing = f.cert.with_file_name("no-such.key");
    let manager = MysqlManager::new(config.with_ssl_cert(&f.cert).with_ssl_key(&missing));
    let err = manager.connect().await.map(|_| ()).unwrap_err();
    match &err {
        MysqlError::InvalidOption { name, reason } => {
            assert_eq!(name, "ssl-key");
            assert!(reason.contains("no-such.key"), "{reason}");
        }
        other => panic!("expected InvalidOption(ssl-key), got {other:?}"),
    }
    assert!(!manager.is_retryable(&err));
}
