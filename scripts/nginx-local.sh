#!/usr/bin/env bash
# Runs the deployment's nginx config (docker/nginx/) with the nginx from apt, in the
# foreground, unprivileged (as www-data when started by root), on loopback:
#   scripts/nginx-local.sh PORT UPSTREAM_HOST:PORT [WORK_DIR]
# It renders the template as the nginx image's envsubst does and serves the built web app
# (web/dist: run scripts/web-build.sh first). Stop it with SIGTERM.
# nginx reaches the server from 127.0.0.1: serve with PLANSCAPE_TRUSTED_PROXIES=127.0.0.1/32
# (http.trusted_proxies) so that rate limits see the browsers' addresses it forwards.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="$1"
UPSTREAM="$2"
DIR="${3:-$(mktemp -d /tmp/planscape-nginx.XXXXXX)}"
if [ ! -f "$ROOT/web/dist/index.html" ]; then
  echo "nginx-local.sh: web/dist is not built (scripts/web-build.sh)" >&2
  exit 1
fi
rm -rf "$DIR/web"
mkdir -p "$DIR/web"
cp -R "$ROOT/web/dist/." "$DIR/web/"
cp "$ROOT/docker/nginx/planscape-proxy.conf" "$DIR/"
sed -e "s|\${NGINX_PORT}|127.0.0.1:$PORT|" -e "s|\${PLANSCAPE_UPSTREAM}|$UPSTREAM|" \
    -e "s|\${WEB_ROOT}|$DIR/web|" -e "s|/etc/nginx/planscape-proxy.conf|$DIR/planscape-proxy.conf|" \
    "$ROOT/docker/nginx/planscape.conf.template" > "$DIR/site.conf"
cat > "$DIR/nginx.conf" <<CONF
worker_processes auto;
pid $DIR/nginx.pid;
error_log $DIR/error.log warn;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  include /etc/nginx/mime.types;
  client_body_temp_path $DIR/body;
  proxy_temp_path $DIR/proxy;
  fastcgi_temp_path $DIR/fastcgi;
  uwsgi_temp_path $DIR/uwsgi;
  scgi_temp_path $DIR/scgi;
  include $DIR/site.conf;
}
CONF
if [ "$(id -u)" = 0 ]; then
  chown -R www-data:www-data "$DIR"
  cd /
  exec runuser -u www-data -- /usr/sbin/nginx -c "$DIR/nginx.conf" -p "$DIR" -e "$DIR/error.log"
fi
exec /usr/sbin/nginx -c "$DIR/nginx.conf" -p "$DIR" -e "$DIR/error.log"
