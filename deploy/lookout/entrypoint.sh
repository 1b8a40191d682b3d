#!/bin/sh
# lookout's container entrypoint: reads secrets from files (Docker secrets) into the environment
# variables lookout reads, then replaces itself with lookout (same PID, under docker-init).
#   NAME_FILE=/run/secrets/x -> NAME=<the file's content>, for JWT_SECRET and every LOOKOUT_* name:
#   LOOKOUT_TOKEN_FILE (one static admin token), JWT_SECRET_FILE (Concertim's HS256 secret),
#   LOOKOUT_CONCERTIM__OPENSTACK__PASSWORD_FILE, LOOKOUT_STORE__URL_FILE (URL with a password), ...
# An empty LOOKOUT_* variable (or empty secret file) counts as unset: compose passes every
# optional setting, set or not, and an empty string is never a meaningful value for lookout.
set -eu
for var in $(env | sed -n 's/^\(JWT_SECRET\|LOOKOUT_[A-Z0-9_]*\)_FILE=.*/\1/p'); do
  eval "file=\${${var}_FILE}"
  unset "${var}_FILE"
  [ -n "$file" ] || continue
  if [ ! -r "$file" ]; then
    echo "lookout-entrypoint: ${var}_FILE=$file is not readable" >&2
    exit 64
  fi
  value=$(cat "$file")
  export "$var=$value"
done
for var in $(env | sed -n 's/^\(LOOKOUT_[A-Z0-9_]*\)=$/\1/p'); do unset "$var"; done
unset file value 2>/dev/null || true
exec /usr/local/bin/lookout "$@"
