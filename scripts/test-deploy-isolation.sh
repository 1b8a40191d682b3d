# Sourced by scripts/test-deploy.sh (uses its check/api/code helpers, TMP, URL, TOKEN, SIM_*):
# the Docker socket behind socket-proxy's allow-list, lookout's networks, and its way out.
# shellcheck shell=bash

# -- the Docker socket: only socket-proxy holds it -----------------------------------------------
socket_holders() {
  local c holders=""
  for c in $(docker ps -q --filter label=com.docker.compose.project=lookout); do
    if docker inspect -f '{{range .Mounts}}{{.Source}} {{end}}' "$c" | grep -q 'docker.sock'; then
      holders+="$(docker inspect -f '{{.Name}}' "$c" | tr -d /) "
    fi
  done
  echo "containers mounting the Docker socket: ${holders:-none}"
  [ "$holders" = "lookout-socket-proxy " ]
}
check "socket proxy: only lookout-socket-proxy mounts the Docker socket" socket_holders
check "socket proxy: lookout has no socket file and no extra group" bash -c \
  "docker exec lookout bash -c '! ls -la /var/run/docker.sock /run/docker.sock 2>/dev/null' &&
   [ \"\$(docker inspect -f '{{.HostConfig.GroupAdd}}' lookout)\" = '[]' ] &&
   ! docker exec lookout grep -Eq '^Groups:.*\\b$DOCKER_GID\\b' /proc/1/status"
check "socket proxy: lookout's DOCKER_HOST is tcp://socket-proxy:2375" bash -c \
  "docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' lookout | grep -qx 'DOCKER_HOST=tcp://socket-proxy:2375'"

# One raw HTTP/1.1 call to the proxy from inside container $1 (lookout's own seat: what an
# attacker who took lookout over could send). Prints the status code.
engine_call() { # container host method path
  docker exec "$1" bash -c 'exec 3<>"/dev/tcp/$0/2375" || exit 1
    printf "%s %s HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}" "$1" "$2" >&3
    timeout 10 head -n1 <&3' "$2" "$3" "$4" | awk '{print $2}'
}
expect_calls() { # container host status "METHOD path"...
  local c=$1 h=$2 want=$3 call got bad=0; shift 3
  for call in "$@"; do
    # shellcheck disable=SC2086
    got=$(engine_call "$c" "$h" $call)
    echo "$call -> ${got:-no answer}"
    [ "$got" = "$want" ] || bad=1
  done
  return "$bad"
}
check "socket proxy: the calls lookout makes pass (version, _ping, list, inspect, stats)" \
  expect_calls lookout socket-proxy 200 "GET /_ping" "HEAD /_ping" "GET /version" "GET /v1.41/version" \
  "GET /v1.41/containers/json?all=true" "GET /v1.41/containers/lookout/json" \
  "GET /v1.41/containers/lookout-nginx/stats?stream=false"
cat "$TMP/check.out" | sed 's/^/     /'
check "socket proxy: create, exec, images, build and everything else refused with 403" \
  expect_calls lookout socket-proxy 403 "POST /containers/create" "POST /v1.41/containers/create?name=x" \
  "POST /v1.41/containers/lookout/exec" "POST /v1.41/exec/0123/start" "POST /v1.41/images/create?fromImage=x" \
  "POST /build" "POST /v1.41/build?t=x" "GET /v1.41/images/json" "GET /v1.41/info" "GET /v1.41/events" \
  "POST /v1.41/containers/lookout/attach" "PUT /v1.41/containers/lookout/archive?path=/" \
  "GET /v1.41/containers/lookout/archive?path=/" "POST /v1.41/volumes/create" "POST /v1.41/networks/create" \
  "POST /v1.41/containers/lookout-nginx/stop" "POST /v1.41/containers/lookout-nginx/kill" \
  "DELETE /v1.41/containers/lookout-nginx" "GET /v1.41/containers/json/../../info" \
  "GET /v1.41/containers/%2e%2e/%2e%2e/info" "POST /v1.41/containers/lookout%2fexec" \
  "POST //containers/create" "POST /v1.41/swarm/init" "POST /session"
cat "$TMP/check.out" | sed 's/^/     /'
create_refused() { # a create the engine would carry out (valid body, existing image): refused, nothing made
  local body got
  body='{"Image":"'"${LOOKOUT_IMAGE:-lookout:latest}"'","Cmd":["true"]}'
  got=$(docker exec lookout bash -c 'exec 3<>/dev/tcp/socket-proxy/2375 || exit 1
    printf "POST /v1.41/containers/create?name=lookout-refused-probe HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s" "${#0}" "$0" >&3
    timeout 10 head -n1 <&3' "$body" | awk '{print $2}')
  echo "POST /v1.41/containers/create?name=lookout-refused-probe with a valid body -> ${got:-no answer}"
  [ "$got" = 403 ] && ! docker container inspect lookout-refused-probe >/dev/null 2>&1
}
check "socket proxy: a create the engine would carry out is refused (403) and no container exists" create_refused
docker rm -f lookout-refused-probe >/dev/null 2>&1
# lookout's own control route, with control off at the proxy: refused, the container untouched
control_refused() {
  local c
  c=$(code -X POST -H "Authorization: Bearer $TOKEN" "$URL/api/v1/containers/lookout-prometheus/pause")
  echo "POST /api/v1/containers/lookout-prometheus/pause -> $c; state $(docker inspect -f '{{.State.Status}}' lookout-prometheus)"
  [ "${c:0:1}" != 2 ] && [ "$(docker inspect -f '{{.State.Status}}' lookout-prometheus)" = running ]
}
check "socket proxy: control off (LOOKOUT_CONTAINER_CONTROL=0): lookout's pause route fails, container untouched" control_refused
# The same image and configuration with CONTAINER_CONTROL=1, beside the stack's proxy on the
# dockerapi network, against a throwaway container: control passes, create/remove still do not.
control_on() {
  docker run -d --name lookout-test-proxy-control --label lookout.test=1 --network lookout_dockerapi \
    --read-only --cap-drop ALL --security-opt no-new-privileges:true --group-add "$DOCKER_GID" \
    -e CONTAINER_CONTROL=1 -v /var/run/docker.sock:/var/run/docker.sock \
    "${SOCKET_PROXY_IMAGE:-lookout/socket-proxy:latest}" >/dev/null || return 1
  docker run -d --name lookout-test-victim --label lookout.test=1 --network none \
    --entrypoint sleep "${LOOKOUT_IMAGE:-lookout:latest}" 120 >/dev/null || return 1
  sleep 1
  local ok=0
  expect_calls lookout lookout-test-proxy-control 204 "POST /v1.41/containers/lookout-test-victim/pause" || ok=1
  echo "victim: $(docker inspect -f '{{.State.Status}}' lookout-test-victim)"
  [ "$(docker inspect -f '{{.State.Status}}' lookout-test-victim)" = paused ] || ok=1
  expect_calls lookout lookout-test-proxy-control 204 "POST /v1.41/containers/lookout-test-victim/unpause" \
    "POST /v1.41/containers/lookout-test-victim/restart?t=1" || ok=1
  expect_calls lookout lookout-test-proxy-control 403 "POST /v1.41/containers/create" \
    "DELETE /v1.41/containers/lookout-test-victim?force=true" "POST /v1.41/containers/lookout-test-victim/exec" || ok=1
  docker rm -f lookout-test-proxy-control lookout-test-victim >/dev/null 2>&1
  return "$ok"
}
check "socket proxy: with CONTAINER_CONTROL=1 pause/unpause/restart pass; create, remove, exec still 403" control_on
cat "$TMP/check.out" | sed 's/^/     /'
figures() { # every container of the stack, listed by lookout with CPU, memory and pids figures
  local i
  for i in 1 2 3 4 5 6; do
    api /api/v1/containers >"$TMP/containers.json" || return 1
    jq -er --arg stack "${STACK[*]}" '($stack | split(" ")) as $want
      | [.containers[] | select(.name as $n | $want | index($n))
         | select(.state == "running" and .cpu_percent != null and .memory_used_bytes > 0 and .pids > 0)
         | "\(.name): cpu \(.cpu_percent * 10 | round / 10) %, mem \(.memory_used_bytes / 1048576 | round) MiB, pids \(.pids)"]
      | if length == ($want | length) then .[] else error("\(length) of \($want | length) with figures") end' \
      "$TMP/containers.json" && return 0
    sleep 1
  done
  return 1
}
check "socket proxy: lookout lists the containers with figures (GET /api/v1/containers)" figures
cat "$TMP/check.out" | sed 's/^/     /'

# -- networks ---------------------------------------------------------------------------------
nets() {
  local n e
  n=$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' lookout)
  echo "lookout's networks: $n"
  [ "$n" = "lookout_backend lookout_dockerapi lookout_egress " ] || return 1
  for e in backend dockerapi; do
    [ "$(docker network inspect -f '{{.Internal}}' "lookout_$e")" = true ] || { echo "$e not internal"; return 1; }
  done
  [ "$(docker network inspect -f '{{.Internal}} {{index .Options "com.docker.network.bridge.enable_icc"}}' lookout_egress)" = "false false" ] || { echo "egress: not a NAT network with icc off"; return 1; }
  e=$(docker network inspect -f '{{range .Containers}}{{.Name}} {{end}}' lookout_egress)
  echo "on egress: $e"; [ "$e" = "lookout " ] || return 1
  e=$(docker network inspect -f '{{range .Containers}}{{.Name}} {{end}}' lookout_dockerapi | tr ' ' '\n' | sort | tr '\n' ' ')
  echo "on dockerapi: $e"; [ "$e" = " lookout lookout-socket-proxy " ] || [ "$e" = "lookout lookout-socket-proxy " ]
}
check "lookout is on backend + dockerapi (internal) and egress (NAT, icc off, nothing else on it)" nets
cat "$TMP/check.out" | sed 's/^/     /'
unreachable_from() { # network: no lookout address answers on 8080 from a container there
  local ip bad=0
  for ip in $(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' lookout); do
    if docker run --rm --label lookout.test=1 --network "$1" --entrypoint bash "${LOOKOUT_IMAGE:-lookout:latest}" \
         -c "timeout 4 bash -c 'exec 3<>/dev/tcp/$ip/8080'" 2>/dev/null; then
      echo "reached $ip:8080 from $1"; bad=1
    else
      echo "$ip:8080 unreachable from $1"
    fi
  done
  return "$bad"
}
check "a container on the default bridge cannot reach lookout:8080 on any of its addresses" unreachable_from bridge
check "a container put on lookout's egress network cannot reach lookout:8080 (icc off)" unreachable_from lookout_egress
check "lookout has a default route (the egress network's gateway)" bash -c \
  "docker exec lookout awk 'NR>1 && \$2==\"00000000\" {found=1} END {exit !found}' /proc/net/route"

# -- the way out: /api/smart through nginx to an upstream on the host ---------------------------
sim_received() { curl -s --max-time 5 "http://$SIM_IP:$SIM_PORT/api/work/stats" | jq -er .received; }
smart_via_host() {
  local r0 r1 body c
  r0=$(sim_received) || { echo "work-sim on $SIM_IP:$SIM_PORT does not answer"; cat "$TMP/work-sim.log"; return 1; }
  body=$(api "/api/smart?timeout=5000"); c=$?
  r1=$(sim_received)
  echo "GET /api/smart -> $body; work-sim on the host ($SIM_IP:$SIM_PORT) received $r0 -> $r1"
  [ "$c" = 0 ] && jq -e '.time | type == "number"' <<<"$body" >/dev/null && [ "$r1" -gt "$r0" ]
}
check "egress: /api/smart through nginx answers from an upstream on the host (host.docker.internal:$SIM_PORT)" smart_via_host
cat "$TMP/check.out" | sed 's/^/     /'
smart_fails_without_host() {
  stop_sim
  local c; c=$(code -H "Authorization: Bearer $TOKEN" "$URL/api/smart?timeout=2000")
  echo "work-sim stopped: GET /api/smart -> $c"
  start_sim
  [ "$c" = 502 ] || [ "$c" = 504 ]
}
check "egress: with the host's upstream stopped /api/smart fails (502/504): the answer came from the host" smart_fails_without_host
