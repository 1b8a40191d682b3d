#!/usr/bin/env bash
# Installs (Debian packages) and starts a private PostgreSQL and a private MariaDB on 127.0.0.1
# for the lookout-store test suite, creates a `lookout_test` database and user in each, and prints
# the lines to `eval`:
#
#   eval "$(scripts/test-services.sh)"
#   cargo test -p lookout-store
#
# Runs as root with no standard input on a fresh Debian bookworm machine. Idempotent: a second
# run only checks that both servers answer and prints the same lines.
#
# Environment (all optional):
#   LOOKOUT_TEST_SERVICES_DIR  where the data directories live (default /var/tmp/lookout-test-services)
#   LOOKOUT_TEST_PG_PORT       PostgreSQL port (default 55432)
#   LOOKOUT_TEST_MYSQL_PORT    MariaDB port (default 13307)
# Stop both:  scripts/test-services.sh stop
# Everything but the export lines goes to stderr.
set -euo pipefail
exec 3>&1 1>&2 # keep stdout for the export lines only
# The servers started below must not inherit fd 3: a caller reading our stdout through a pipe
# (`eval "$(...)"`) would otherwise wait for EOF until the servers exit, that is forever.

DIR=${LOOKOUT_TEST_SERVICES_DIR:-/var/tmp/lookout-test-services}
PG_PORT=${LOOKOUT_TEST_PG_PORT:-55432}
MY_PORT=${LOOKOUT_TEST_MYSQL_PORT:-13307}
PASS=lookout_test
PG_DIR=$DIR/pg
MY_DIR=$DIR/maria
export DEBIAN_FRONTEND=noninteractive

log() { echo "test-services: $*"; }

pg_bindir() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
	[ -n "$d" ] && [ -x "$d/pg_ctl" ] && echo "$d"
}

if [ "${1:-}" = stop ]; then
	if b=$(pg_bindir) && [ -f "$PG_DIR/data/postmaster.pid" ]; then
		runuser -u postgres -- "$b/pg_ctl" -D "$PG_DIR/data" -m fast stop || true
	fi
	if [ -f "$MY_DIR/mysqld.pid" ]; then
		kill "$(cat "$MY_DIR/mysqld.pid")" 2>/dev/null || true
		for _ in $(seq 1 80); do [ -f "$MY_DIR/mysqld.pid" ] || break; sleep 0.25; done
	fi
	log "stopped"
	exit 0
fi

[ "$(id -u)" = 0 ] || { log "must run as root (installs packages, starts servers)"; exit 1; }

# ---- install (only what is missing; one apt-get update) ----
need=()
pg_bindir >/dev/null || need+=(postgresql)
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]} from Debian's packages"
	apt-get update -qq </dev/null
	for p in "${need[@]}"; do
		pol=$(apt-cache policy "$p")
		case "$pol" in *"Candidate: (none)"* | "") log "package $p has no candidate"; exit 1 ;; esac
	done
	# Keep the packages' own service start-up from touching the default ports: no daemons from postinst.
	policy_added=0
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		policy_added=1
	fi
	apt-get install -y -qq --no-install-recommends "${need[@]}" </dev/null >"$DIR.apt.log" 2>&1 || {
		[ $policy_added = 1 ] && rm -f /usr/sbin/policy-rc.d
		tail -n 30 "$DIR.apt.log"
		exit 1
	}
	[ $policy_added = 1 ] && rm -f /usr/sbin/policy-rc.d
fi
PGBIN=$(pg_bindir) || { log "PostgreSQL binaries not found"; exit 1; }
MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)
mkdir -p "$DIR"
chmod 755 "$DIR"

# ---- PostgreSQL: a private cluster on 127.0.0.1:$PG_PORT ----
mkdir -p "$PG_DIR"
chown postgres:postgres "$PG_DIR"
if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
	log "initdb $PG_DIR/data"
	runuser -u postgres -- "$PGBIN/initdb" -D "$PG_DIR/data" -U postgres --auth-local=trust \
		--auth-host=scram-sha-256 -E UTF8 >"$PG_DIR/initdb.log" 2>&1
fi
if ! runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; then
	log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c max_connections=200 -c fsync=on" \
		start </dev/null >/dev/null 3>&-
fi
psql_() { runuser -u postgres -- psql -h "$PG_DIR" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
if [ "$(psql_ -c "SELECT 1 FROM pg_roles WHERE rolname='lookout_test'")" != 1 ]; then
	psql_ -c "CREATE ROLE lookout_test LOGIN PASSWORD '$PASS'"
fi
if [ "$(psql_ -c "SELECT 1 FROM pg_database WHERE datname='lookout_test'")" != 1 ]; then
	psql_ -c "CREATE DATABASE lookout_test OWNER lookout_test"
fi

# ---- MariaDB: a private server on 127.0.0.1:$MY_PORT (recipe of reference/openstack/maria_up.sh) ----
if [ -f "$MY_DIR/mysqld.pid" ] && kill -0 "$(cat "$MY_DIR/mysqld.pid")" 2>/dev/null; then
	log "MariaDB already running"
else
	mkdir -p "$MY_DIR/tmp"
	if [ ! -d "$MY_DIR/data/mysql" ]; then
		log "mariadb-install-db $MY_DIR/data"
		rm -rf "$MY_DIR/data"
		mkdir -p "$MY_DIR/data"
		mariadb-install-db --no-defaults --user=root --datadir="$MY_DIR/data" \
			--auth-root-authentication-method=socket --skip-test-db >"$MY_DIR/install.log" 2>&1
	fi
	log "starting MariaDB on 127.0.0.1:$MY_PORT"
	setsid "$MARIADBD" --no-defaults --user=root --datadir="$MY_DIR/data" --socket="$MY_DIR/mysqld.sock" \
		--pid-file="$MY_DIR/mysqld.pid" --bind-address=127.0.0.1 --port="$MY_PORT" --skip-name-resolve \
		--tmpdir="$MY_DIR/tmp" --log-error="$MY_DIR/error.log" --innodb-buffer-pool-size=64M \
		--innodb-log-file-size=16M --max-connections=300 --max-allowed-packet=64M \
		</dev/null >"$MY_DIR/out.log" 2>&1 3>&- &
fi
ok=0
for _ in $(seq 1 240); do
	if mariadb --socket="$MY_DIR/mysqld.sock" -uroot -e 'select 1' >/dev/null 2>&1; then ok=1; break; fi
	sleep 0.25
done
[ $ok = 1 ] || { log "MariaDB did not come up; see $MY_DIR/error.log"; tail -n 20 "$MY_DIR/error.log" || true; exit 1; }
mariadb --socket="$MY_DIR/mysqld.sock" -uroot -e "
CREATE DATABASE IF NOT EXISTS lookout_test;
CREATE USER IF NOT EXISTS 'lookout_test'@'127.0.0.1' IDENTIFIED BY '$PASS';
GRANT ALL ON lookout_test.* TO 'lookout_test'@'127.0.0.1';"

log "PostgreSQL 127.0.0.1:$PG_PORT and MariaDB 127.0.0.1:$MY_PORT are up"
echo "export LOOKOUT_TEST_POSTGRES_URL=postgres://lookout_test:$PASS@127.0.0.1:$PG_PORT/lookout_test" >&3
echo "export LOOKOUT_TEST_MYSQL_URL=mysql://lookout_test:$PASS@127.0.0.1:$MY_PORT/lookout_test" >&3
