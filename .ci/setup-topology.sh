#!/usr/bin/env bash
# Starts the servers tidepool's topology suites need, next to the main
# PostgreSQL cluster on 127.0.0.1:5432. Idempotent and fast when everything
# is already up (a few psql round trips); run as root:
#
#   bash .ci/setup-topology.sh
#
# What it does:
#   * a streaming replica of the main cluster on 127.0.0.1:5433: a Debian
#     cluster `<version>/replica` (pg_createcluster, so pg_ctlcluster,
#     pg_lsclusters and /var/log/postgresql treat it like `main`), whose data
#     directory /var/lib/postgresql/<version>/replica is replaced by a
#     `pg_basebackup -R` of the primary, streaming through the physical slot
#     `tidepool_replica` as the role `tidepool_repl` (REPLICATION, LOGIN).
#     hot_standby is on (the default), hot_standby_feedback too;
#   * on the primary: the role, the slot, and two pg_hba.conf lines that let
#     `tidepool_repl` open *replication* connections from loopback (trust, as
#     every other loopback line on this test server). No other role's
#     authentication changes: a `replication` line matches replication
#     connections only. `max_slot_wal_keep_size` is capped (ALTER SYSTEM,
#     reload) so that a replica left stopped cannot fill the disk with WAL.
#     Nothing on the primary needs a restart: PostgreSQL 15's defaults
#     (wal_level=replica, max_wal_senders=10) already allow streaming;
#   * PgBouncer (the distribution's package) on 127.0.0.1:6432 in
#     transaction mode, default_pool_size 4 (so server connections really are
#     shared), auth_type trust with a userlist holding `postgres`, in front of
#     the database `test` on the primary. Its own config
#     (/etc/pgbouncer/tidepool.ini) and pid file; the package's default
#     config and service are left alone.
#
# The replica is rebuilt from scratch (a base backup of a test-sized cluster
# takes a second or two) only when it is not streaming after a start.
#
# Tests find them at TIDEPOOL_PG_REPLICA_URL (default
# postgres://postgres@127.0.0.1:5433/test) and TIDEPOOL_PGBOUNCER_URL
# (default postgres://postgres@127.0.0.1:6432/test).
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-topology.sh: must run as root" >&2
    exit 1
fi

PG_VERSION="${PG_VERSION:-$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)}"
if [ -z "$PG_VERSION" ]; then
    echo "setup-topology.sh: no cluster under /etc/postgresql (is PostgreSQL installed?)" >&2
    exit 1
fi
PRIMARY_PORT=5432
REPLICA=replica
REPLICA_PORT=5433
REPLICA_CONF="/etc/postgresql/$PG_VERSION/$REPLICA"
REPLICA_DATA="/var/lib/postgresql/$PG_VERSION/$REPLICA"
HBA="/etc/postgresql/$PG_VERSION/main/pg_hba.conf"
REPL_ROLE=tidepool_repl
SLOT=tidepool_replica
REPL_MARKER="# tidepool: replication role for the streaming replica"
BOUNCER_PORT=6432
BOUNCER_INI=/etc/pgbouncer/tidepool.ini
BOUNCER_USERS=/etc/pgbouncer/tidepool-userlist.txt
BOUNCER_PID=/var/run/postgresql/tidepool-pgbouncer.pid
BOUNCER_LOG=/var/log/postgresql/tidepool-pgbouncer.log

log() { printf 'setup-topology: %s\n' "$*"; }
as_postgres() { runuser -u postgres -- "$@"; }
psql_on() { local port=$1; shift; as_postgres psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -d postgres "$@"; }
wait_ready() {
    for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p "$1" && return 0; sleep 0.5; done
    pg_isready -h 127.0.0.1 -p "$1"
}
replica_streaming() {
    [ "$(psql_on "$REPLICA_PORT" -c 'select pg_is_in_recovery()' 2>/dev/null)" = t ] || return 1
    # The walreceiver may need a moment after a start.
    for _ in $(seq 1 20); do
        [ "$(psql_on "$PRIMARY_PORT" -c "select count(*) from pg_replication_slots s join pg_stat_replication r on r.pid = s.active_pid where s.slot_name = '$SLOT' and r.state = 'streaming'")" -ge 1 ] && return 0
        sleep 0.25
    done
    return 1
}

wait_ready "$PRIMARY_PORT"

# --- the primary: role, pg_hba lines, slot, WAL cap --------------------------
if [ "$(psql_on "$PRIMARY_PORT" -c "select 1 from pg_roles where rolname = '$REPL_ROLE'")" != 1 ]; then
    psql_on "$PRIMARY_PORT" -c "create role $REPL_ROLE with login replication"
fi
reload=0
if ! grep -qF "$REPL_MARKER" "$HBA"; then
    # Ahead of the other lines, like setup-postgres.sh's: first match wins.
    tmp="$(mktemp)"
    {
        echo "$REPL_MARKER"
        echo "host    replication    $REPL_ROLE    127.0.0.1/32    trust"
        echo "host    replication    $REPL_ROLE    ::1/128         trust"
        cat "$HBA"
    } >"$tmp"
    cat "$tmp" >"$HBA"
    rm -f "$tmp"
    reload=1
fi
if [ "$(psql_on "$PRIMARY_PORT" -c 'show max_slot_wal_keep_size')" = -1 ]; then
    psql_on "$PRIMARY_PORT" -c "alter system set max_slot_wal_keep_size = '2GB'"
    reload=1
fi
if [ "$reload" = 1 ]; then
    psql_on "$PRIMARY_PORT" -c 'select pg_reload_conf()' >/dev/null
    sleep 0.5
fi

# --- the replica ----------------------------------------------------------------
if [ ! -d "$REPLICA_CONF" ]; then
    log "creating cluster $PG_VERSION/$REPLICA on port $REPLICA_PORT"
    pg_createcluster "$PG_VERSION" "$REPLICA" --port "$REPLICA_PORT" >/dev/null
fi
# The replica's own settings, in its conf.d (the base backup brings the
# primary's postgresql.auto.conf, nothing from /etc).
mkdir -p "$REPLICA_CONF/conf.d"
cat >"$REPLICA_CONF/conf.d/90-tidepool-replica.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $REPLICA_PORT
hot_standby = on
hot_standby_feedback = on
# A standby needs at least the primary's max_connections.
max_connections = $(psql_on "$PRIMARY_PORT" -c 'show max_connections')
autovacuum = off
CONF
chown -R postgres:postgres "$REPLICA_CONF"
# Same trust-on-loopback as the primary's test setup.
cat >"$REPLICA_CONF/pg_hba.conf" <<HBA_
# tidepool: streaming replica for the topology tests (setup-topology.sh)
local   all    all                   trust
host    all    all    127.0.0.1/32   trust
host    all    all    ::1/128        trust
HBA_
chown postgres:postgres "$REPLICA_CONF/pg_hba.conf"

replica_online() { pg_lsclusters -h "$PG_VERSION" "$REPLICA" 2>/dev/null | grep -q online; }
if ! replica_online && [ -f "$REPLICA_DATA/standby.signal" ]; then
    pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$REPLICA" start || true
    wait_ready "$REPLICA_PORT" || true
fi
if replica_online && replica_streaming; then
    log "replica on $REPLICA_PORT is streaming"
else
    log "building the replica on $REPLICA_PORT from a base backup of the primary"
    if replica_online; then
        pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$REPLICA" stop -m fast || true
    fi
    if [ "$(psql_on "$PRIMARY_PORT" -c "select 1 from pg_replication_slots where slot_name = '$SLOT'")" = 1 ]; then
        psql_on "$PRIMARY_PORT" -c "select pg_drop_replication_slot('$SLOT')" >/dev/null
    fi
    rm -rf "$REPLICA_DATA"
    install -d -o postgres -g postgres -m 700 "$REPLICA_DATA"
    as_postgres pg_basebackup -h 127.0.0.1 -p "$PRIMARY_PORT" -U "$REPL_ROLE" \
        -D "$REPLICA_DATA" -R -C -S "$SLOT" -X stream --checkpoint=fast >/dev/null
    pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$REPLICA" start
    wait_ready "$REPLICA_PORT"
    replica_streaming || { echo "setup-topology.sh: the replica on $REPLICA_PORT does not stream" >&2; exit 1; }
    log "replica on $REPLICA_PORT is streaming"
fi

# --- PgBouncer ----------------------------------------------------------------------
if ! command -v pgbouncer >/dev/null; then
    echo "setup-topology.sh: pgbouncer is not installed (apt-get install pgbouncer)" >&2
    exit 1
fi
mkdir -p /etc/pgbouncer
ini="$(mktemp)"
cat >"$ini" <<INI
; tidepool: PgBouncer in transaction mode for the pooler-mode tests
; (written by .ci/setup-topology.sh; the package's pgbouncer.ini is untouched)
[databases]
test = host=127.0.0.1 port=$PRIMARY_PORT dbname=test

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
pool_mode = transaction
default_pool_size = 4
max_client_conn = 500
auth_type = trust
auth_file = $BOUNCER_USERS
admin_users = postgres
stats_users = postgres
pidfile = $BOUNCER_PID
logfile = $BOUNCER_LOG
ignore_startup_parameters = extra_float_digits
INI
echo '"postgres" ""' >"$BOUNCER_USERS"
chown postgres:postgres "$BOUNCER_USERS"
touch "$BOUNCER_LOG" && chown postgres:postgres "$BOUNCER_LOG"
config_changed=0
if ! cmp -s "$ini" "$BOUNCER_INI"; then
    cp "$ini" "$BOUNCER_INI"
    config_changed=1
fi
rm -f "$ini"
chown postgres:postgres "$BOUNCER_INI"

bouncer_running() { [ -s "$BOUNCER_PID" ] && kill -0 "$(cat "$BOUNCER_PID")" 2>/dev/null; }
if bouncer_running; then
    if [ "$config_changed" = 1 ]; then
        kill -HUP "$(cat "$BOUNCER_PID")"
        sleep 0.5
    fi
else
    if pg_isready -q -h 127.0.0.1 -p "$BOUNCER_PORT"; then
        echo "setup-topology.sh: something else listens on 127.0.0.1:$BOUNCER_PORT" >&2
        exit 1
    fi
    as_postgres pgbouncer -d -q "$BOUNCER_INI"
fi
for _ in $(seq 1 40); do
    as_postgres psql -X -q -At -h 127.0.0.1 -p "$BOUNCER_PORT" -d test -c 'select 1' >/dev/null 2>&1 && break
    sleep 0.25
done
as_postgres psql -X -q -At -h 127.0.0.1 -p "$BOUNCER_PORT" -d test -c 'select 1' >/dev/null
log "pgbouncer on $BOUNCER_PORT (transaction mode) serves test"
