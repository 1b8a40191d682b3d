#!/bin/sh
# On first start, generate a self-signed certificate into the certs volume (key 0600, owned by
# www-data); then run nginx in the foreground with the configuration given as the argument.
set -eu
CERT_DIR=${CERT_DIR:-/etc/nginx/certs}
TLS_CN=${TLS_CN:-localhost}
TLS_DAYS=${TLS_DAYS:-825}
CONF=${1:-/etc/nginx/nginx.conf}
if [ ! -s "$CERT_DIR/tls.key" ] || [ ! -s "$CERT_DIR/tls.crt" ]; then
  echo "nginx-entrypoint: generating a self-signed certificate for CN=$TLS_CN" >&2
  umask 077
  tmp=$(mktemp -d "$CERT_DIR/.new.XXXXXX")
  openssl req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 \
    -days "$TLS_DAYS" -subj "/CN=$TLS_CN" \
    -addext "subjectAltName=DNS:$TLS_CN,DNS:localhost,IP:127.0.0.1" \
    -keyout "$tmp/tls.key" -out "$tmp/tls.crt" 2>/dev/null
  chmod 0600 "$tmp/tls.key"; chmod 0644 "$tmp/tls.crt"
  # key first, then the certificate: a reader that sees tls.crt also sees its key
  mv "$tmp/tls.key" "$CERT_DIR/tls.key"; mv "$tmp/tls.crt" "$CERT_DIR/tls.crt"
  rmdir "$tmp"
fi
nginx -t -q -c "$CONF"
exec nginx -c "$CONF" -g 'daemon off;'
