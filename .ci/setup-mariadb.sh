#!/usr/bin/env bash
# Prepares the local MariaDB for tidepool-mysql's tests. Idempotent; run as
# root (it connects as root through the unix socket, or 127.0.0.1 without a
# password):
#
#   bash .ci/setup-mariadb.sh
#
# What it does:
#   * starts the server if it is down;
#   * makes sure the database `test` exists;
#   * creates the user `tidepool_pw` at '%' and at 'localhost' with the
#     password `tidepool-canary` (reset on every run) and all privileges on
#     `test`, so the wrong-password test has a real password to get wrong;
#   * generates a self-signed CA and a server certificate in
#     $TIDEPOOL_MYSQL_TLS_DIR (default /etc/mysql/tidepool-tls). The
#     certificate names only IP:127.0.0.1, not `localhost`, on purpose: the
#     TLS tests connect to `localhost` to get a host name mismatch;
#   * points the server at them (/etc/mysql/mariadb.conf.d/90-tidepool-tls.cnf,
#     adding an `!includedir` for that directory to my.cnf when the server
#     would not read it otherwise);
#   * restarts the server only when that changed something or TLS is not on
#     yet, and waits until it accepts connections again.
#
# Tests find the CA at $TIDEPOOL_MYSQL_CA, default
# /etc/mysql/tidepool-tls/ca.crt (this script prints the export line).
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-mariadb.sh: must run as root" >&2
    exit 1
fi

MARIADBD=/usr/sbin/mariadbd
TLS_DIR="${TIDEPOOL_MYSQL_TLS_DIR:-/etc/mysql/tidepool-tls}"
CNF_DIR=/etc/mysql/mariadb.conf.d
TLS_CNF="$CNF_DIR/90-tidepool-tls.cnf"
changed=0

admin() {
    if mariadb -uroot -e 'select 1' >/dev/null 2>&1; then
        mariadb -uroot "$@"
    else
        mariadb -h 127.0.0.1 -P 3306 -uroot "$@"
    fi
}

accepting() { mariadb-admin -h 127.0.0.1 -P 3306 -uroot --connect-timeout=2 ping >/dev/null 2>&1; }

wait_accepting() {
    for _ in $(seq 1 120); do
        if accepting; then return 0; fi
        sleep 0.5
    done
    echo "setup-mariadb.sh: MariaDB does not accept connections on 127.0.0.1:3306; see /var/log/mysql/error.log" >&2
    exit 1
}

# systemd manages the server only where systemd runs and the unit is active;
# otherwise it was started as .ci/run does, and is restarted the same way.
systemd_unit() {
    [ -d /run/systemd/system ] || return 1
    local unit
    for unit in mariadb mysql; do
        if systemctl is-active --quiet "$unit" 2>/dev/null; then
            echo "$unit"
            return 0
        fi
    done
    return 1
}

start_daemon() {
    mkdir -p /run/mysqld
    chown mysql:mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec "$MARIADBD"
}

restart_mariadb() {
    local unit
    if unit="$(systemd_unit)"; then
        systemctl restart "$unit"
    else
        mariadb-admin -uroot shutdown 2>/dev/null || mariadb-admin -h 127.0.0.1 -P 3306 -uroot shutdown
        # `--start --oknodo` would see a server still shutting down as running.
        for _ in $(seq 1 120); do
            if ! start-stop-daemon --status --exec "$MARIADBD"; then break; fi
            sleep 0.5
        done
        start_daemon
    fi
    wait_accepting
}

if ! accepting; then
    if unit="$(systemd_unit)"; then systemctl start "$unit"; else start_daemon; fi
    wait_accepting
fi

# --- TLS material -----------------------------------------------------------
mkdir -p "$TLS_DIR"
tls_usable() {
    [ -s "$TLS_DIR/ca.crt" ] && [ -s "$TLS_DIR/server.crt" ] && [ -s "$TLS_DIR/server.key" ] \
        && openssl verify -CAfile "$TLS_DIR/ca.crt" "$TLS_DIR/server.crt" >/dev/null 2>&1 \
        && openssl x509 -checkend 2592000 -noout -in "$TLS_DIR/server.crt" >/dev/null 2>&1
}
if ! tls_usable; then
    tmp="$(mktemp -d)"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
        -subj "/CN=tidepool MariaDB test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$tmp/ca.key" -out "$tmp/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$tmp/server.key" -out "$tmp/server.csr" 2>/dev/null
    cat > "$tmp/ext.cnf" <<EXT
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1
EXT
    openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" \
        -CAcreateserial -days 3650 -extfile "$tmp/ext.cnf" -out "$tmp/server.crt" 2>/dev/null
    install -m 0644 "$tmp/ca.crt" "$TLS_DIR/ca.crt"
    install -m 0644 "$tmp/server.crt" "$TLS_DIR/server.crt"
    install -m 0600 "$tmp/server.key" "$TLS_DIR/server.key"
    rm -rf "$tmp"
    changed=1
fi
chown -R mysql:mysql "$TLS_DIR"
chmod 0755 "$TLS_DIR"
chmod 0644 "$TLS_DIR/ca.crt" "$TLS_DIR/server.crt"
chmod 0600 "$TLS_DIR/server.key"

want_tls_cnf="# tidepool: TLS for the driver tests (written by .ci/setup-mariadb.sh)
[mariadbd]
ssl_ca = $TLS_DIR/ca.crt
ssl_cert = $TLS_DIR/server.crt
ssl_key = $TLS_DIR/server.key"
mkdir -p "$CNF_DIR"
if [ ! -f "$TLS_CNF" ] || [ "$(cat "$TLS_CNF")" != "$want_tls_cnf" ]; then
    printf '%s\n' "$want_tls_cnf" > "$TLS_CNF"
    chmod 0644 "$TLS_CNF"
    changed=1
fi

# Debian's stock my.cnf includes mariadb.conf.d; a trimmed one may not.
if ! "$MARIADBD" --print-defaults | grep -qF -- "--ssl_cert=$TLS_DIR/server.crt"; then
    MY_CNF=/etc/mysql/my.cnf
    [ -e "$MY_CNF" ] || MY_CNF=/etc/my.cnf
    printf '\n# tidepool: read the TLS snippet (added by .ci/setup-mariadb.sh)\n!includedir %s/\n' "$CNF_DIR" >> "$MY_CNF"
    changed=1
    if ! "$MARIADBD" --print-defaults | grep -qF -- "--ssl_cert=$TLS_DIR/server.crt"; then
        echo "setup-mariadb.sh: $MARIADBD does not read $TLS_CNF even after adding !includedir to $MY_CNF" >&2
        exit 1
    fi
fi

have_ssl="$(admin -N -B -e "SELECT @@have_ssl")"
if [ "$changed" = 1 ] || [ "$have_ssl" != YES ]; then
    restart_mariadb
    have_ssl="$(admin -N -B -e "SELECT @@have_ssl")"
    if [ "$have_ssl" != YES ]; then
        echo "setup-mariadb.sh: TLS is still off after the restart (have_ssl=$have_ssl); see /var/log/mysql/error.log" >&2
        exit 1
    fi
fi

# --- database and password user (after the restart, so the server is up) ----
admin <<'SQL'
CREATE DATABASE IF NOT EXISTS test;
CREATE USER IF NOT EXISTS 'tidepool_pw'@'%' IDENTIFIED BY 'tidepool-canary';
CREATE USER IF NOT EXISTS 'tidepool_pw'@'localhost' IDENTIFIED BY 'tidepool-canary';
ALTER USER 'tidepool_pw'@'%' IDENTIFIED BY 'tidepool-canary';
ALTER USER 'tidepool_pw'@'localhost' IDENTIFIED BY 'tidepool-canary';
GRANT ALL PRIVILEGES ON test.* TO 'tidepool_pw'@'%';
GRANT ALL PRIVILEGES ON test.* TO 'tidepool_pw'@'localhost';
FLUSH PRIVILEGES;
SQL
echo "setup-mariadb.sh: database test and user tidepool_pw ready (TLS in $TLS_DIR)"
echo "export TIDEPOOL_MYSQL_CA=$TLS_DIR/ca.crt"
