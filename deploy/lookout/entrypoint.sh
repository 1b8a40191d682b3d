#!/bin/sh
# lookout's container entrypoint: reads secrets from files (Docker secrets) into the environment
# variables lookout reads, then replaces itself with lookout (same PID, under docker-init).
#   LOOKOUT_TOKEN_FILE -> LOOKOUT_TOKEN (one static admin token)
#   JWT_SECRET_FILE    -> JWT_SECRET    (the Concertim listener's HS256 secret)
set -eu
for var in LOOKOUT_TOKEN JWT_SECRET; do
  eval "file=\${${var}_FILE:-}"
  if [ -n "$file" ]; then
    if [ ! -r "$file" ]; then
      echo "lookout-entrypoint: ${var}_FILE=$file is not readable" >&2
      exit 64
    fi
    value=$(cat "$file")
    export "$var=$value"
    unset "${var}_FILE"
  fi
done
unset file value 2>/dev/null || true
exec /usr/local/bin/lookout "$@"
