#!/usr/bin/env bash
# A real OpenStack subset on 127.0.0.1 for lookout's OpenStack backend tests:
# Keystone (SQLite, gunicorn), Placement, Glance, nova-api/-conductor/-scheduler/-compute with the
# fake virt driver (Nova's databases on a private MariaDB), RabbitMQ, a Neutron stand-in, and Heat.
#
# Usage (as root, no stdin needed; idempotent):
#   scripts/openstack-lab.sh start    install what is missing, start (or reuse) the lab, print
#                                     `export LOOKOUT_TEST_OPENSTACK_*=` lines on stdout
#   scripts/openstack-lab.sh stop     stop every lab process, by pid
#   scripts/openstack-lab.sh env      print the export lines of a running lab
# LAB (default /var/tmp/lookout-openstack-lab) must be traversable by the user rabbitmq.
# Progress goes to stderr; only the export lines go to stdout.
set -euo pipefail
export LAB=${LAB:-/var/tmp/lookout-openstack-lab}
H=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/openstack
B=$LAB/stack; V=$LAB/venv; M=$LAB/maria; export PYTHONWARNINGS=ignore
KP=15001; NP=18774; PP=18778; GP=19292; QP=19696; HP=18004; MP=13306
K=http://127.0.0.1:$KP/v3
T00=$(date +%s)
step() { echo "[openstack-lab $(( $(date +%s) - T00 ))s] $*" >&2; }
die() { echo "openstack-lab: $*" >&2; exit 1; }

print_env() {
  cat <<E
export LOOKOUT_TEST_OPENSTACK_AUTH_URL=$K
export LOOKOUT_TEST_OPENSTACK_ADMIN_USER=admin
export LOOKOUT_TEST_OPENSTACK_ADMIN_PASSWORD=s3cret
export LOOKOUT_TEST_OPENSTACK_ADMIN_PROJECT=admin
export LOOKOUT_TEST_OPENSTACK_REGION=RegionOne
export LOOKOUT_TEST_OPENSTACK_IMAGE_ID=$(cat $LAB/image_id 2>/dev/null)
export LOOKOUT_TEST_OPENSTACK_HEAT=$( [ -f $LAB/heat_ready ] && echo 1 || echo 0)
E
}

stop_lab() {
  local KIDS="" f p left="" ALL EPMD
  for f in $B/pids/*.pid; do [ -f "$f" ] && KIDS="$KIDS $(ps -o pid= --ppid "$(cat $f)" 2>/dev/null || true)"; done
  for f in $B/pids/*.pid; do [ -f "$f" ] && kill "$(cat $f)" 2>/dev/null || true; done
  [ -f $B/rabbit/rabbit.pid ] && kill "$(cat $B/rabbit/rabbit.pid)" 2>/dev/null || true
  [ -f $M/mysqld.pid ] && kill "$(cat $M/mysqld.pid)" 2>/dev/null || true
  alive() { local st; st=$(ps -o stat= -p $1 2>/dev/null) && [ "${st:0:1}" != Z ]; }
  ALL="$KIDS $(cat $B/pids/*.pid $B/rabbit/rabbit.pid $M/mysqld.pid 2>/dev/null || true)"
  for i in $(seq 1 20); do left=""; for p in $ALL; do alive $p && left="$left $p"; done; [ -z "$left" ] && break; sleep 0.5; done
  if [ -n "$left" ]; then kill -9 $left 2>/dev/null || true; fi
  EPMD=$(ss -ltnpH 'src 127.0.0.1:4369' 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true)
  if [ -n "$EPMD" ] && [ "$(ps -o user= -p $EPMD 2>/dev/null | tr -d ' ')" = rabbitmq ]; then kill $EPMD 2>/dev/null || true; fi
  rm -f $B/pids/*.pid $LAB/ready $LAB/heat_ready
  step "stopped"
}

install_lab() {
  local PKGS="rabbitmq-server mariadb-server curl openssh-client iproute2" MISSING
  MISSING=$(for p in $PKGS; do dpkg-query -W -f='${Status}' $p 2>/dev/null | grep -q 'install ok installed' || echo $p; done)
  if [ -n "$MISSING" ]; then
    step "apt-get install $MISSING"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $MISSING >/dev/null 2>&1 </dev/null
  fi
  if [ -d /run/systemd/system ]; then
    for s in rabbitmq-server mariadb; do systemctl is-active -q $s 2>/dev/null && systemctl stop $s && systemctl disable -q $s || true; done
  fi
  mkdir -p $LAB; chmod 755 $LAB
  local want; want=$(sha256sum $H/constraints.txt | cut -c1-16)
  if [ "$(cat $LAB/venv.ok 2>/dev/null)" != "$want" ]; then
    step "venv: pip install (pinned)"
    [ -x $V/bin/python ] || python3 -m venv $V
    $V/bin/pip install -q -r $H/constraints.txt >&2
    $V/bin/pip install -q -c $H/constraints.txt openstack-heat==27.0.1 python-heatclient==5.3.0 >&2
    echo "$want" > $LAB/venv.ok
  fi
  step "installed"
}

running() { [ -f $LAB/ready ] && curl -s -m 3 -o /dev/null $K && curl -s -m 3 -o /dev/null http://127.0.0.1:$NP/ \
  && for f in $B/pids/*.pid; do kill -0 "$(cat $f)" 2>/dev/null || return 1; done; }

serve() { # name dir module port [threads]
  setsid $V/bin/gunicorn --chdir $2 --bind 127.0.0.1:$4 --workers 1 --threads ${5:-4} --worker-class gthread --timeout 120 \
    --pid $B/pids/$1.pid --no-control-socket $3:application </dev/null >$2/gunicorn.out 2>&1 & }
wsgi() { # file envvar confdir import
  printf 'import os, sys, warnings\nwarnings.filterwarnings("ignore")\nos.environ["%s"] = "%s"\nsys.argv = sys.argv[:1]\nfrom %s import application  # noqa\n' "$2" "$3" "$4" > $1; }
waitport() { for i in $(seq 1 240); do curl -s -m 2 -o /dev/null "$1" && return 0; sleep 0.25; done; die "timeout waiting for $1"; }
j() { python3 -c "import sys,json;print(json.load(sys.stdin)$1)"; }
admin_token() { curl -s -i -m 20 -X POST $K/auth/tokens -H 'Content-Type: application/json' -d '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"id":"default"},"password":"s3cret"}}},"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}}' | awk -F': ' 'tolower($1)=="x-subject-token"{print $2}' | tr -d '\r'; }
kpost() { curl -sf -m 20 -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json' -X POST "$K/$1" -d "$2"; }
kput() { curl -sf -m 20 -o /dev/null -H "X-Auth-Token: $TOKEN" -X PUT "$K/$1"; }
kget() { curl -sf -m 20 -H "X-Auth-Token: $TOKEN" "$K/$1"; }
role_id() { kget "roles?name=$1" | j '["roles"][0]["id"]'; }
endpoint() { # type name url
  local S; S=$(kpost services "{\"service\":{\"type\":\"$1\",\"name\":\"$2\"}}" | j '["service"]["id"]')
  for i in public internal admin; do kpost endpoints "{\"endpoint\":{\"service_id\":\"$S\",\"interface\":\"$i\",\"region_id\":\"RegionOne\",\"url\":\"$3\"}}" >/dev/null; done; }

start_lab() {
  stop_lab 2>/dev/null
  rm -rf $B; mkdir -p $B/{ks/{etc,fk,ck,log},nova/{etc,log,state,lock},placement/{etc,log},glance/{etc,log,img,staging,tasks},heat/{etc,log,lock},rabbit,pids}
  chmod 700 $B/ks/fk $B/ks/ck; chmod 755 $B
  local AUTH="auth_url = http://127.0.0.1:$KP/v3
auth_type = password
username = nova
password = nova-pw
project_name = service
user_domain_name = Default
project_domain_name = Default
region_name = RegionOne"
  # ---------- rabbitmq (loopback only)
  chown rabbitmq:rabbitmq $B/rabbit
  cat > $B/rabbit/start.sh <<R
#!/bin/sh
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=5672 ERL_EPMD_ADDRESS=127.0.0.1 RABBITMQ_NODENAME=rabbit@localhost
export RABBITMQ_MNESIA_BASE=$B/rabbit/mnesia RABBITMQ_LOG_BASE=$B/rabbit/log RABBITMQ_PID_FILE=$B/rabbit/rabbit.pid HOME=/var/lib/rabbitmq
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
exec /usr/lib/rabbitmq/bin/rabbitmq-server
R
  chmod 755 $B/rabbit/start.sh; setsid su rabbitmq -s /bin/sh -c $B/rabbit/start.sh </dev/null >$B/rabbit/out.log 2>&1 &
  # ---------- mariadb (Nova's databases)
  rm -rf $M; mkdir -p $M/data $M/tmp
  mariadb-install-db --no-defaults --user=root --datadir=$M/data --auth-root-authentication-method=socket --skip-test-db >$M/install.log 2>&1
  setsid mariadbd --no-defaults --user=root --datadir=$M/data --socket=$M/mysqld.sock --pid-file=$M/mysqld.pid \
    --bind-address=127.0.0.1 --port=$MP --skip-name-resolve --tmpdir=$M/tmp --log-error=$M/error.log \
    --innodb-buffer-pool-size=64M --innodb-log-file-size=16M --innodb-flush-log-at-trx-commit=2 --max-connections=500 \
    </dev/null >$M/out.log 2>&1 &
  # ---------- keystone
  cat > $B/ks/etc/keystone.conf <<C
[DEFAULT]
log_dir = $B/ks/log
[database]
connection = sqlite:///$B/ks/keystone.db
[token]
provider = fernet
[fernet_tokens]
key_repository = $B/ks/fk
[credential]
key_repository = $B/ks/ck
[identity]
password_hash_rounds = 4
[cache]
enabled = true
backend = dogpile.cache.memory
C
  local KM="$V/bin/keystone-manage --config-file $B/ks/etc/keystone.conf"
  $KM db_sync >&2; $KM fernet_setup --keystone-user root --keystone-group root >&2; $KM credential_setup --keystone-user root --keystone-group root >&2
  $KM bootstrap --bootstrap-password s3cret --bootstrap-region-id RegionOne --bootstrap-admin-url $K \
    --bootstrap-internal-url $K --bootstrap-public-url $K >&2
  python3 -c "import sqlite3;sqlite3.connect('$B/ks/keystone.db').execute('PRAGMA journal_mode=WAL')"
  wsgi $B/ks/app.py OS_KEYSTONE_CONFIG_DIR $B/ks/etc keystone.wsgi.api; serve keystone $B/ks app $KP 1
  waitport $K; step "keystone serving"
  TOKEN=$(admin_token); [ -n "$TOKEN" ] || die "no admin token"
  local SVC_P NOVA_U HEAT_U
  SVC_P=$(kpost projects '{"project":{"name":"service","domain_id":"default"}}' | j '["project"]["id"]')
  NOVA_U=$(kpost users '{"user":{"name":"nova","password":"nova-pw","domain_id":"default"}}' | j '["user"]["id"]')
  HEAT_U=$(kpost users '{"user":{"name":"heat","password":"heat-pw","domain_id":"default"}}' | j '["user"]["id"]')
  kpost roles '{"role":{"name":"service"}}' >/dev/null || true
  kpost roles '{"role":{"name":"watcher"}}' >/dev/null || true
  for u in $NOVA_U $HEAT_U; do for r in admin service; do kput projects/$SVC_P/users/$u/roles/$(role_id $r); done; done
  # The user Concertim's teams grant `watcher` to.
  kpost users '{"user":{"name":"concertim","password":"concertim-pw","domain_id":"default"}}' >/dev/null
  endpoint compute nova http://127.0.0.1:$NP/v2.1
  endpoint placement placement http://127.0.0.1:$PP
  endpoint image glance http://127.0.0.1:$GP
  endpoint network neutron-stub http://127.0.0.1:$QP
  endpoint orchestration heat "http://127.0.0.1:$HP/v1/%(project_id)s"
  step "keystone users/services/endpoints registered"
  # ---------- placement + glance + neutron stub
  printf "[DEFAULT]\nlog_dir = $B/placement/log\n[api]\nauth_strategy = keystone\n[placement_database]\nconnection = sqlite:///$B/placement/placement.db\n[keystone_authtoken]\nwww_authenticate_uri = $K\n$AUTH\n" > $B/placement/etc/placement.conf
  $V/bin/placement-manage --config-file $B/placement/etc/placement.conf db sync >/dev/null 2>&1
  wsgi $B/placement/app.py OS_PLACEMENT_CONFIG_DIR $B/placement/etc placement.wsgi.api; serve placement $B/placement app $PP
  cp $V/etc/glance/glance-api-paste.ini $B/glance/etc/
  printf "[DEFAULT]\nlog_dir = $B/glance/log\nenabled_backends = fs:file\n[database]\nconnection = sqlite:///$B/glance/glance.db\n[glance_store]\ndefault_backend = fs\n[fs]\nfilesystem_store_datadir = $B/glance/img\n[os_glance_staging_store]\nfilesystem_store_datadir = $B/glance/staging\n[os_glance_tasks_store]\nfilesystem_store_datadir = $B/glance/tasks\n[paste_deploy]\nflavor = keystone\n[oslo_concurrency]\nlock_path = $B/glance\n[keystone_authtoken]\nwww_authenticate_uri = $K\n$AUTH\n" > $B/glance/etc/glance-api.conf
  $V/bin/glance-manage --config-file $B/glance/etc/glance-api.conf db_sync >/dev/null 2>&1
  wsgi $B/glance/app.py OS_GLANCE_CONFIG_DIR $B/glance/etc glance.wsgi.api; serve glance $B/glance app $GP
  setsid $V/bin/python $H/neutron_stub.py </dev/null >$B/neutron_stub.out 2>&1 & echo $! > $B/pids/neutron_stub.pid
  step "placement+glance db synced, starting"
  # ---------- nova (databases on the lab's MariaDB)
  for i in $(seq 1 120); do mariadb --socket=$M/mysqld.sock -uroot -e 'select 1' >/dev/null 2>&1 && break; sleep 0.25; done
  mariadb --socket=$M/mysqld.sock -uroot -e "
CREATE USER IF NOT EXISTS 'nova'@'127.0.0.1' IDENTIFIED BY 'novadb';
CREATE DATABASE nova_api; CREATE DATABASE nova; CREATE DATABASE nova_cell0;
GRANT ALL ON nova_api.* TO 'nova'@'127.0.0.1'; GRANT ALL ON nova.* TO 'nova'@'127.0.0.1'; GRANT ALL ON nova_cell0.* TO 'nova'@'127.0.0.1';" \
    || die "mariadb did not come up ($(tail -3 $M/error.log))"
  local DB=mysql+pymysql://nova:novadb@127.0.0.1:$MP
  cp $V/etc/nova/api-paste.ini $B/nova/etc/
  cat > $B/nova/etc/nova.conf <<C
[DEFAULT]
host = localnova
state_path = $B/nova/state
log_dir = $B/nova/log
transport_url = rabbit://guest:guest@127.0.0.1:5672/
my_ip = 127.0.0.1
compute_driver = fake.SmallFakeDriver
[api]
auth_strategy = keystone
[api_database]
connection = $DB/nova_api
[database]
connection = $DB/nova
[oslo_concurrency]
lock_path = $B/nova/lock
[keystone_authtoken]
www_authenticate_uri = $K
$AUTH
[placement]
$AUTH
[neutron]
$AUTH
[glance]
region_name = RegionOne
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = 5
[oslo_messaging_notifications]
driver = noop
[vnc]
enabled = false
C
  local NM="$V/bin/nova-manage --config-file $B/nova/etc/nova.conf"
  $NM api_db sync >&2; $NM cell_v2 map_cell0 --database_connection $DB/nova_cell0 >&2; $NM db sync >&2
  $NM cell_v2 create_cell --name cell1 --database_connection $DB/nova --transport-url rabbit://guest:guest@127.0.0.1:5672/ >/dev/null
  step "nova dbs synced"
  wsgi $B/nova/app.py OS_NOVA_CONFIG_DIR $B/nova/etc nova.wsgi.osapi_compute; serve nova-api $B/nova app $NP
  # ---------- heat (config now; processes once RabbitMQ answers)
  local HAUTH="auth_url = $K
auth_type = password
username = heat
password = heat-pw
user_domain_name = Default"
  cat > $B/heat/etc/heat.conf <<C
[DEFAULT]
host = localheat
log_dir = $B/heat/log
transport_url = rabbit://guest:guest@127.0.0.1:5672/
num_engine_workers = 1
graceful_shutdown_timeout = 5
region_name_for_services = RegionOne
auth_encryption_key = 0123456789abcdef0123456789abcdef
environment_dir = $V/etc/heat/environment.d
template_dir = $V/etc/heat/templates
heat_metadata_server_url = http://127.0.0.1:$HP
heat_waitcondition_server_url = http://127.0.0.1:$HP/v1/waitcondition
[database]
connection = sqlite:///$B/heat/heat.db
[paste_deploy]
api_paste_config = $V/etc/heat/api-paste.ini
[oslo_concurrency]
lock_path = $B/heat/lock
[oslo_messaging_notifications]
driver = noop
[keystone_authtoken]
www_authenticate_uri = $K
$HAUTH
project_name = service
project_domain_name = Default
region_name = RegionOne
[trustee]
$HAUTH
[clients_keystone]
auth_uri = http://127.0.0.1:$KP
[clients]
endpoint_type = public
C
  $V/bin/heat-manage --config-file $B/heat/etc/heat.conf db_sync >/dev/null 2>&1
  python3 -c "import sqlite3;sqlite3.connect('$B/heat/heat.db').execute('PRAGMA journal_mode=WAL')"
  printf 'import sys, warnings\nwarnings.filterwarnings("ignore")\nsys.argv = ["heat-api", "--config-file", "%s"]\nfrom heat.wsgi.api import application  # noqa\n' $B/heat/etc/heat.conf > $B/heat/app.py
  for i in $(seq 1 120); do (echo > /dev/tcp/127.0.0.1/5672) 2>/dev/null && break; sleep 0.5; done; step "rabbitmq up"
  waitport http://127.0.0.1:$PP/; waitport http://127.0.0.1:$GP/versions; waitport http://127.0.0.1:$NP/v2.1; step "placement/glance/nova-api serving"
  for s in conductor scheduler compute; do
    setsid $V/bin/nova-$s --config-file $B/nova/etc/nova.conf --log-file $B/nova/log/nova-$s.log </dev/null >$B/nova/$s.out 2>&1 & echo $! > $B/pids/nova-$s.pid
  done
  setsid $V/bin/gunicorn --chdir $B/heat --bind 127.0.0.1:$HP --workers 1 --threads 4 --worker-class gthread --timeout 120 \
    --pid $B/pids/heat-api.pid --no-control-socket app:application </dev/null >$B/heat/gunicorn.out 2>&1 &
  setsid $V/bin/heat-engine --config-file $B/heat/etc/heat.conf --log-file $B/heat/log/heat-engine.log </dev/null >$B/heat/engine.out 2>&1 & echo $! > $B/pids/heat-engine.pid
  local IMG
  IMG=$(kpost_glance() { curl -sf -m 20 -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/json' -X POST http://127.0.0.1:$GP/v2/images -d '{"name":"tiny","disk_format":"raw","container_format":"bare","visibility":"public"}'; }; kpost_glance | j '["id"]')
  head -c 1048576 /dev/zero | curl -sf -m 30 -H "X-Auth-Token: $TOKEN" -H 'Content-Type: application/octet-stream' -X PUT http://127.0.0.1:$GP/v2/images/$IMG/file --data-binary @-
  echo $IMG > $LAB/image_id
  local n=0
  for i in $(seq 1 180); do n=$(curl -s -m 5 -H "X-Auth-Token: $TOKEN" -H 'OpenStack-API-Version: placement 1.39' http://127.0.0.1:$PP/resource_providers | python3 -c 'import sys,json;print(len(json.load(sys.stdin)["resource_providers"]))' 2>/dev/null || echo 0); [ "$n" -ge 1 ] && break; sleep 0.5; done
  [ "$n" -ge 1 ] || die "nova-compute did not register in placement (see $B/nova/log)"
  $NM cell_v2 discover_hosts >/dev/null 2>&1
  step "compute registered; image $IMG"
  # heat: wait for the engine's row (an RPC sent before its queue exists is lost), then one API call
  waitport http://127.0.0.1:$HP/
  n=0; for i in $(seq 1 240); do n=$(python3 -c "import sqlite3;print(sqlite3.connect('$B/heat/heat.db').execute('select count(*) from service').fetchone()[0])" 2>/dev/null || echo 0); [ "$n" -ge 1 ] && break; sleep 0.25; done
  if [ "$n" -ge 1 ] && curl -sf -m 30 -o /dev/null -H "X-Auth-Token: $TOKEN" http://127.0.0.1:$HP/v1/$(kget 'projects?name=admin' | j '["projects"][0]["id"]')/services; then
    touch $LAB/heat_ready; step "heat ready"
  else step "heat did not come up; its tests will fail (see $B/heat/log)"; fi
  touch $LAB/ready
  step "READY"
}

case "${1:-start}" in
  start)
    [ "$(id -u)" = 0 ] || die "run as root"
    install_lab
    if running; then step "reusing the running lab"; else start_lab; fi
    print_env ;;
  stop) stop_lab ;;
  env) running || die "the lab is not running"; print_env ;;
  *) die "usage: $0 start|stop|env" ;;
esac
