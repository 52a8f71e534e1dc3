#!/bin/bash
# managed by llmrack: initialise a cluster in $PGDATA on first start (user, password from
# POSTGRES_PASSWORD_FILE, database, the vector extension), then run postgres on 0.0.0.0:5432 with
# scram-sha-256 for every TCP connection. Extra arguments go to postgres (e.g. -c shared_buffers=256MB).
set -euo pipefail

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=postgres}"

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /run/postgresql
    chown postgres:postgres "$PGDATA" /run/postgresql
    chmod 0700 "$PGDATA"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
        [ -r "$POSTGRES_PASSWORD_FILE" ] || { echo "POSTGRES_PASSWORD_FILE $POSTGRES_PASSWORD_FILE is not readable" >&2; exit 1; }
        password="$(head -n1 "$POSTGRES_PASSWORD_FILE")"
    elif [ -n "${POSTGRES_PASSWORD:-}" ]; then
        password="$POSTGRES_PASSWORD"
    else
        echo "set POSTGRES_PASSWORD_FILE (a file holding the database password)" >&2
        exit 1
    fi
    [ -n "$password" ] || { echo "the database password is empty" >&2; exit 1; }
    pwfile="$(mktemp /run/postgresql/pw.XXXXXX)"
    printf '%s\n' "$password" > "$pwfile"
    chown postgres:postgres "$pwfile"
    chmod 0600 "$pwfile"
    echo "initialising a PostgreSQL cluster in $PGDATA"
    as_postgres initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    {
        echo "# managed by llmrack: every TCP connection authenticates with scram-sha-256"
        echo "local all all trust"
        echo "host all all 0.0.0.0/0 scram-sha-256"
        echo "host all all ::/0 scram-sha-256"
    } > "$PGDATA/pg_hba.conf"
    {
        echo "# managed by llmrack"
        echo "password_encryption = 'scram-sha-256'"
        echo "jit = off"
    } >> "$PGDATA/postgresql.conf"
    # private server on the unix socket only, to create the database and the extension
    as_postgres pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    psql=(as_postgres psql -v ON_ERROR_STOP=1 -q -h /run/postgresql -U "$POSTGRES_USER")
    if [ "$POSTGRES_DB" != postgres ]; then
        "${psql[@]}" -d postgres -v db="$POSTGRES_DB" <<< 'CREATE DATABASE :"db";'
    fi
    "${psql[@]}" -d "$POSTGRES_DB" -c 'CREATE EXTENSION IF NOT EXISTS vector'
    as_postgres pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "cluster ready: user $POSTGRES_USER, database $POSTGRES_DB, extension vector"
fi

if [ "$(id -u)" = 0 ]; then
    exec setpriv --reuid=postgres --regid=postgres --init-groups -- postgres -D "$PGDATA" -c listen_addresses='*' "$@"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
