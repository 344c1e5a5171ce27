#!/usr/bin/env bash
# Prepares the local PostgreSQL cluster for tidepool-postgres's auth and TLS
# tests. Idempotent; run as root on a machine where PostgreSQL runs as a
# Debian cluster (/etc/postgresql/<version>/main):
#
#   bash .ci/setup-postgres.sh
#
# What it does:
#   * starts the cluster if it is down and creates the `test` database;
#   * creates the role `tidepool_pw` (password `tidepool-canary`, LOGIN) and a
#     pg_hba.conf line requiring scram-sha-256 for it on 127.0.0.1, placed
#     before every other line (so the trust lines do not let it in
#     without a password);
#   * generates a self-signed CA and a server certificate for localhost,
#     127.0.0.1 and ::1 in $TIDEPOOL_PG_TLS_DIR (default
#     /var/lib/postgresql/tidepool-tls) and points the server at them
#     (conf.d/50-tidepool-tls.conf, ssl = on);
#   * for the client-certificate tests: a separate client CA and a
#     certificate for the role `tidepool_cert` (client.crt/client.key in the
#     same directory), the server trusting that CA for client certificates
#     (conf.d/51-tidepool-client-certs.conf, ssl_ca_file), and pg_hba.conf
#     lines, before every other line, that let `tidepool_cert` in over TLS
#     with `cert` authentication only and refuse it without TLS. No other
#     role's authentication changes. These changes need a reload only;
#   * for the fingerprint oracle test (tidepool-sql): adds pg_stat_statements
#     to shared_preload_libraries (ALTER SYSTEM, keeping whatever else is
#     listed) when it is not there yet — that alone needs a restart — and
#     creates the extension in the `test` database;
#   * restarts the cluster when its TLS configuration or preloaded libraries
#     changed (else reloads it when only the client-certificate setup
#     changed) and waits for it.
#
# Tests find the CA at $TIDEPOOL_PG_CA, default
# /var/lib/postgresql/tidepool-tls/ca.crt (this script prints the export line).
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-postgres.sh: must run as root" >&2
    exit 1
fi

PG_VERSION="${PG_VERSION:-$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)}"
if [ -z "$PG_VERSION" ]; then
    echo "setup-postgres.sh: no cluster under /etc/postgresql (is PostgreSQL installed?)" >&2
    exit 1
fi
CONF_DIR="/etc/postgresql/$PG_VERSION/main"
HBA="$CONF_DIR/pg_hba.conf"
TLS_DIR="${TIDEPOOL_PG_TLS_DIR:-/var/lib/postgresql/tidepool-tls}"
ROLE=tidepool_pw
ROLE_PASSWORD=tidepool-canary
MARKER="# tidepool: password-auth role for the driver tests"
CERT_ROLE=tidepool_cert
CERT_MARKER="# tidepool: client-certificate role for the driver tests"
changed=0
reload=0

as_postgres() { runuser -u postgres -- "$@"; }
psql_admin() { as_postgres psql -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }
cluster_online() { pg_lsclusters -h "$PG_VERSION" main 2>/dev/null | grep -q online; }

if ! cluster_online; then
    pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main start
fi

# --- TLS material -----------------------------------------------------------
mkdir -p "$TLS_DIR"
if [ ! -s "$TLS_DIR/ca.crt" ] || [ ! -s "$TLS_DIR/server.crt" ] || [ ! -s "$TLS_DIR/server.key" ]; then
    tmp="$(mktemp -d)"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
        -subj "/CN=tidepool test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$tmp/ca.key" -out "$tmp/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$tmp/server.key" -out "$tmp/server.csr" 2>/dev/null
    cat > "$tmp/ext.cnf" <<EXT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
EXT
    openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" \
        -CAcreateserial -days 3650 -extfile "$tmp/ext.cnf" -out "$tmp/server.crt" 2>/dev/null
    install -m 0644 "$tmp/ca.crt" "$TLS_DIR/ca.crt"
    install -m 0644 "$tmp/server.crt" "$TLS_DIR/server.crt"
    install -m 0600 "$tmp/server.key" "$TLS_DIR/server.key"
    rm -rf "$tmp"
    changed=1
fi
chown -R postgres:postgres "$TLS_DIR"
chmod 0755 "$TLS_DIR"
chmod 0600 "$TLS_DIR/server.key"

TLS_CONF="$CONF_DIR/conf.d/50-tidepool-tls.conf"
want_tls_conf="# tidepool: TLS for the driver tests (written by .ci/setup-postgres.sh)
ssl = on
ssl_cert_file = '$TLS_DIR/server.crt'
ssl_key_file = '$TLS_DIR/server.key'"
mkdir -p "$CONF_DIR/conf.d"
if [ ! -f "$TLS_CONF" ] || [ "$(cat "$TLS_CONF")" != "$want_tls_conf" ]; then
    printf '%s\n' "$want_tls_conf" > "$TLS_CONF"
    chown postgres:postgres "$TLS_CONF"
    changed=1
fi

# --- client certificates: a CA of their own, one certificate for CERT_ROLE -
if [ ! -s "$TLS_DIR/client-ca.crt" ] || [ ! -s "$TLS_DIR/client.crt" ] || [ ! -s "$TLS_DIR/client.key" ]; then
    tmp="$(mktemp -d)"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
        -subj "/CN=tidepool test client CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$tmp/client-ca.key" -out "$tmp/client-ca.crt" 2>/dev/null
    # PKCS#8 (openssl's default), the form rustls and libpq both read.
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$CERT_ROLE" \
        -keyout "$tmp/client.key" -out "$tmp/client.csr" 2>/dev/null
    cat > "$tmp/client-ext.cnf" <<EXT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EXT
    openssl x509 -req -in "$tmp/client.csr" -CA "$tmp/client-ca.crt" -CAkey "$tmp/client-ca.key" \
        -CAcreateserial -days 3650 -extfile "$tmp/client-ext.cnf" -out "$tmp/client.crt" 2>/dev/null
    install -m 0644 "$tmp/client-ca.crt" "$TLS_DIR/client-ca.crt"
    install -m 0644 "$tmp/client.crt" "$TLS_DIR/client.crt"
    # Readable by the test runner, whoever it is: a throwaway key for a
    # role that can log in only from this machine.
    install -m 0644 "$tmp/client.key" "$TLS_DIR/client.key"
    rm -rf "$tmp"
    reload=1
fi
chown postgres:postgres "$TLS_DIR"/client-ca.crt "$TLS_DIR"/client.crt "$TLS_DIR"/client.key

CLIENT_CONF="$CONF_DIR/conf.d/51-tidepool-client-certs.conf"
want_client_conf="# tidepool: trust the test client CA for client certificates (written by .ci/setup-postgres.sh)
ssl_ca_file = '$TLS_DIR/client-ca.crt'"
if [ ! -f "$CLIENT_CONF" ] || [ "$(cat "$CLIENT_CONF")" != "$want_client_conf" ]; then
    printf '%s\n' "$want_client_conf" > "$CLIENT_CONF"
    chown postgres:postgres "$CLIENT_CONF"
    reload=1
fi

if ! grep -qF "$CERT_MARKER" "$HBA"; then
    tmp_hba="$(mktemp)"
    {
        echo "$CERT_MARKER"
        echo "hostssl    all    $CERT_ROLE    127.0.0.1/32    cert"
        echo "hostssl    all    $CERT_ROLE    ::1/128         cert"
        echo "hostnossl  all    $CERT_ROLE    127.0.0.1/32    reject"
        echo "hostnossl  all    $CERT_ROLE    ::1/128         reject"
        cat "$HBA"
    } > "$tmp_hba"
    cat "$tmp_hba" > "$HBA"
    rm -f "$tmp_hba"
    reload=1
fi

# --- pg_hba.conf: scram-sha-256 for the password role, before the trust lines
if ! grep -qF "$MARKER" "$HBA"; then
    tmp_hba="$(mktemp)"
    {
        echo "$MARKER"
        echo "host    all    $ROLE    127.0.0.1/32    scram-sha-256"
        echo "host    all    $ROLE    ::1/128         scram-sha-256"
        cat "$HBA"
    } > "$tmp_hba"
    cat "$tmp_hba" > "$HBA"
    rm -f "$tmp_hba"
    changed=1
fi

# --- pg_stat_statements: the oracle for tidepool-sql's fingerprints ----------
# The server must be up to read the setting; ALTER SYSTEM only when the
# library is missing, so a second run changes nothing and restarts nothing.
for _ in $(seq 1 60); do
    if as_postgres pg_isready -q; then break; fi
    sleep 0.5
done
preload="$(psql_admin -Atc "SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'")"
if ! printf '%s' "$preload" | tr ',' '\n' | sed 's/^ *//; s/ *$//' | grep -qx 'pg_stat_statements'; then
    if [ -n "$preload" ]; then
        want_preload="$preload,pg_stat_statements"
    else
        want_preload="pg_stat_statements"
    fi
    psql_admin -c "ALTER SYSTEM SET shared_preload_libraries = '$want_preload'"
    changed=1
fi

if [ "$changed" = 1 ]; then
    pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main restart
elif [ "$reload" = 1 ]; then
    # pg_hba.conf and ssl_ca_file are read again on reload: no restart.
    pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main reload
fi

for _ in $(seq 1 60); do
    if as_postgres pg_isready -q; then break; fi
    sleep 0.5
done
as_postgres pg_isready -q

# --- role and database (after the restart, so the server is up) -------------
psql_admin <<SQL
SET password_encryption = 'scram-sha-256';
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
        CREATE ROLE $ROLE LOGIN;
    END IF;
END
\$\$;
ALTER ROLE $ROLE LOGIN PASSWORD '$ROLE_PASSWORD';
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$CERT_ROLE') THEN
        CREATE ROLE $CERT_ROLE LOGIN;
    END IF;
END
\$\$;
SQL
if ! psql_admin -Atc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
    psql_admin -c "CREATE DATABASE test"
fi
psql_admin -d test -c "GRANT ALL ON SCHEMA public TO $ROLE" >/dev/null
psql_admin -d test -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null

echo "setup-postgres.sh: PostgreSQL $PG_VERSION ready (roles $ROLE and $CERT_ROLE, TLS in $TLS_DIR)"
echo "export TIDEPOOL_PG_CA=$TLS_DIR/ca.crt"
