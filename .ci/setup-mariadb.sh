#!/usr/bin/env bash
# Prepares the local MariaDB for tidepool-mysql's tests. Idempotent; run as
# root (it connects as root through the unix socket, or 127.0.0.1 without a
# password):
#
#   bash .ci/setup-mariadb.sh
#
# What it does:
#   * makes sure the database `test` exists;
#   * creates the user `tidepool_pw` at '%' and at 'localhost' with the
#     password `tidepool-canary` (reset on every run) and all privileges on
#     `test`, so the wrong-password test has a real password to get wrong.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-mariadb.sh: must run as root" >&2
    exit 1
fi

admin() {
    if mariadb -uroot -e 'select 1' >/dev/null 2>&1; then
        mariadb -uroot "$@"
    else
        mariadb -h 127.0.0.1 -P 3306 -uroot "$@"
    fi
}

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
echo "setup-mariadb.sh: database test and user tidepool_pw ready"
