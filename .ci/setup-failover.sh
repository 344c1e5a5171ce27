#!/usr/bin/env bash
# A private PostgreSQL primary/standby pair for tidepool's failover test
# and timeline benchmark, on 127.0.0.1:5434 and 127.0.0.1:5435 — never the
# shared :5432/:5433 that the other suites use. Run as root:
#
#   bash .ci/setup-failover.sh          # make sure the pair is up; prints
#                                       # "primary=<port> standby=<port>"
#
# Two Debian clusters, `<version>/failover_a` (5434) and
# `<version>/failover_b` (5435), made with pg_createcluster so that
# pg_ctlcluster stops, starts and promotes them. Either may be the primary:
# the failover test stops the primary, promotes the standby, and then runs
# this script again, which rebuilds the old primary as a standby of the new
# one (pg_basebackup -R of a test-sized cluster: a second or two). So after
# every run there is exactly one primary and one standby streaming from it,
# which is what the test needs at its start; which port is which is printed
# (and the test asks the servers themselves).
#
# Replication is *synchronous*: the primary has synchronous_standby_names
# = '*' (synchronous_commit stays `on`), so a commit is acknowledged only
# once the standby has flushed its WAL, and a promotion (which replays all
# of it) keeps every acknowledged commit. The standby's own conf.d says
# synchronous_standby_names = '' so that once promoted it takes writes
# alone (a sync primary with no standby would block every commit); this
# script moves the setting when the roles change. Both settings live in
# /etc/postgresql/<version>/<name>/conf.d, not postgresql.auto.conf, which
# pg_basebackup would copy from one to the other.
#
# Idempotent and fast when the pair is already right (a few psql round
# trips); nothing it finds is trusted: a missing, stopped, diverged or
# broken member is started, rebuilt or recreated. Serialized by an flock
# on /run/lock/tidepool-failover.lock unless TIDEPOOL_FAILOVER_LOCKED=1
# (the test holds that lock for its whole run and sets it).
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-failover.sh: must run as root" >&2
    exit 1
fi

LOCK=/run/lock/tidepool-failover.lock
if [ "${TIDEPOOL_FAILOVER_LOCKED:-0}" != 1 ]; then
    mkdir -p /run/lock
    exec 9>"$LOCK"
    flock 9
fi

PG_VERSION="${PG_VERSION:-$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)}"
if [ -z "$PG_VERSION" ]; then
    echo "setup-failover.sh: no cluster under /etc/postgresql (is PostgreSQL installed?)" >&2
    exit 1
fi
NAMES=(failover_a failover_b)
declare -A PORT=([failover_a]=5434 [failover_b]=5435)

log() { printf 'setup-failover: %s\n' "$*" >&2; }
as_postgres() { runuser -u postgres -- "$@"; }
psql_on() {
    local port=$1
    shift
    as_postgres psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -d postgres "$@"
}
conf_dir() { echo "/etc/postgresql/$PG_VERSION/$1"; }
data_dir() { echo "/var/lib/postgresql/$PG_VERSION/$1"; }
online() { pg_lsclusters -h "$PG_VERSION" "$1" 2>/dev/null | grep -q online; }
# The lock descriptor must not leak into the servers it starts (a
# postmaster would hold the lock for its whole life).
ctl() { pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$@" 9>&-; }
wait_ready() {
    for _ in $(seq 1 80); do pg_isready -q -h 127.0.0.1 -p "$1" && return 0; sleep 0.25; done
    return 1
}
# primary | standby | down
role() {
    local r
    r=$(psql_on "${PORT[$1]}" -c 'select pg_is_in_recovery()' 2>/dev/null) || { echo down; return; }
    case "$r" in t) echo standby ;; f) echo primary ;; *) echo down ;; esac
}
# The primary's current timeline (the first 8 hex digits of its WAL file).
timeline() {
    local f
    f=$(psql_on "${PORT[$1]}" -c 'select pg_walfile_name(pg_current_wal_lsn())' 2>/dev/null) || { echo 0; return; }
    echo $((16#${f:0:8}))
}

write_conf() {
    local name=$1 dir
    dir=$(conf_dir "$name")
    mkdir -p "$dir/conf.d"
    cat >"$dir/conf.d/90-tidepool-failover.conf" <<CONF
# tidepool: failover test pair (written by .ci/setup-failover.sh)
listen_addresses = '127.0.0.1'
port = ${PORT[$name]}
max_connections = 100
shared_buffers = 32MB
max_wal_senders = 5
wal_keep_size = '256MB'
hot_standby = on
hot_standby_feedback = on
wal_receiver_status_interval = 1s
autovacuum = off
CONF
    cat >"$dir/pg_hba.conf" <<HBA_
# tidepool: failover test pair (setup-failover.sh); loopback only
local   all            all                   trust
host    all            all    127.0.0.1/32   trust
host    replication    all    127.0.0.1/32   trust
HBA_
    chown -R postgres:postgres "$dir"
}

# synchronous_standby_names for this member: '*' when it is the primary.
set_sync() {
    local name=$1 value=$2 file
    file="$(conf_dir "$name")/conf.d/91-tidepool-sync.conf"
    local want="synchronous_standby_names = '$value'"
    if [ "$(cat "$file" 2>/dev/null)" != "$want" ]; then
        echo "$want" >"$file"
        chown postgres:postgres "$file"
        if online "$name"; then psql_on "${PORT[$name]}" -c 'select pg_reload_conf()' >/dev/null; fi
    fi
}

create() {
    local name=$1
    if [ -d "$(conf_dir "$name")" ]; then
        ctl "$name" stop -m immediate >/dev/null 2>&1 || true
        pg_dropcluster "$PG_VERSION" "$name" >/dev/null 2>&1 || true
    fi
    rm -rf "$(data_dir "$name")" "$(conf_dir "$name")"
    log "creating cluster $PG_VERSION/$name on port ${PORT[$name]}"
    pg_createcluster "$PG_VERSION" "$name" --port "${PORT[$name]}" >/dev/null 9>&-
    write_conf "$name"
}

start() {
    local name=$1
    online "$name" && return 0
    [ -f "$(data_dir "$name")/PG_VERSION" ] || return 1
    ctl "$name" start >/dev/null 2>&1 || return 1
    wait_ready "${PORT[$name]}"
}

# Replaces $2's data with a base backup of the primary $1 and starts it as
# a synchronous standby.
rebuild_standby() {
    local primary=$1 standby=$2
    log "rebuilding $standby (${PORT[$standby]}) as a standby of $primary (${PORT[$primary]})"
    [ -d "$(conf_dir "$standby")" ] || create "$standby"
    write_conf "$standby"
    ctl "$standby" stop -m immediate >/dev/null 2>&1 || true
    set_sync "$standby" ''
    rm -rf "$(data_dir "$standby")"
    install -d -o postgres -g postgres -m 700 "$(data_dir "$standby")"
    as_postgres pg_basebackup -h 127.0.0.1 -p "${PORT[$primary]}" -U postgres \
        -D "$(data_dir "$standby")" -R -X stream --checkpoint=fast >/dev/null
    ctl "$standby" start >/dev/null
    wait_ready "${PORT[$standby]}"
}

# Whether $2 streams from $1 as its synchronous standby.
in_sync() {
    local primary=$1 standby=$2
    [ "$(role "$standby")" = standby ] || return 1
    for _ in $(seq 1 40); do
        [ "$(psql_on "${PORT[$primary]}" -c "select count(*) from pg_stat_replication where state = 'streaming' and sync_state = 'sync'" 2>/dev/null)" = 1 ] && return 0
        sleep 0.25
    done
    return 1
}

for name in "${NAMES[@]}"; do
    if [ ! -d "$(conf_dir "$name")" ] || [ ! -f "$(data_dir "$name")/PG_VERSION" ]; then
        # Missing, or a leftover config without data: one member may be
        # created empty; it becomes the standby below unless both are new.
        [ -d "$(conf_dir "$name")" ] && [ ! -f "$(data_dir "$name")/PG_VERSION" ] && rm -rf "$(conf_dir "$name")"
        [ -d "$(conf_dir "$name")" ] || create "$name"
    fi
    write_conf "$name"
done

# Find the primary among the running members; start the stopped ones only
# when no member is a primary (a stopped old primary started next to a
# promoted standby would be a second primary).
primary=""
pick_primary() {
    primary=""
    local best=-1 t
    for name in "${NAMES[@]}"; do
        if [ "$(role "$name")" = primary ]; then
            t=$(timeline "$name")
            if [ "$t" -gt "$best" ]; then best=$t; primary=$name; fi
        fi
    done
}
pick_primary
if [ -z "$primary" ]; then
    for name in "${NAMES[@]}"; do start "$name" || true; done
    pick_primary
fi
if [ -z "$primary" ]; then
    # Standbys whose primary is gone: promote the first that runs.
    for name in "${NAMES[@]}"; do
        if [ "$(role "$name")" = standby ]; then
            log "promoting $name: no primary is running"
            psql_on "${PORT[$name]}" -c 'select pg_promote(true, 30)' >/dev/null
            primary=$name
            break
        fi
    done
fi
if [ -z "$primary" ]; then
    # Nothing starts: begin again from an empty cluster.
    create failover_a
    start failover_a
    primary=failover_a
fi
standby=failover_b
[ "$primary" = failover_b ] && standby=failover_a

set_sync "$primary" '*'
set_sync "$standby" ''
if ! online "$standby" && [ -f "$(data_dir "$standby")/standby.signal" ]; then
    start "$standby" || true
fi
if ! in_sync "$primary" "$standby"; then
    rebuild_standby "$primary" "$standby"
    in_sync "$primary" "$standby" || {
        echo "setup-failover.sh: $standby does not stream synchronously from $primary" >&2
        exit 1
    }
fi
if [ "$(psql_on "${PORT[$primary]}" -c "select 1 from pg_database where datname = 'test'")" != 1 ]; then
    psql_on "${PORT[$primary]}" -c 'create database test'
fi
log "primary $PG_VERSION/$primary on ${PORT[$primary]}, synchronous standby $PG_VERSION/$standby on ${PORT[$standby]}"
echo "primary=${PORT[$primary]} standby=${PORT[$standby]}"
