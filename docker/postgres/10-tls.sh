#!/usr/bin/env bash
# First start of the production stack's database: a self-signed certificate made here, inside the stack, so no
# key is ever committed; TLS on; remote connections only over TLS and only for the app's two roles.
# The official postgres image runs this once, as the postgres user, on an empty data directory.
set -euo pipefail

openssl req -new -x509 -nodes -days 825 -newkey rsa:2048 -subj "/CN=db" \
    -keyout "$PGDATA/server.key" -out "$PGDATA/server.crt" 2>/dev/null
chmod 600 "$PGDATA/server.key"
cat >>"$PGDATA/postgresql.conf" <<CONF
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_min_protocol_version = 'TLSv1.2'
CONF

# The image's last rule lets any role in from anywhere with a password, with or without TLS. Replace it:
# plain TCP is refused, the superuser is reachable only through the container's own socket.
sed -i '/^host all all all /d' "$PGDATA/pg_hba.conf"
cat >>"$PGDATA/pg_hba.conf" <<HBA
hostnossl all all all reject
hostssl all $POSTGRES_USER all reject
hostssl $POSTGRES_DB $APP_ROLE,$OWNER_ROLE all scram-sha-256
HBA
echo "TLS on with a self-signed certificate for CN=db; plain-text connections are refused."
