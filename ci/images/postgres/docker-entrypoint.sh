#!/bin/bash
# Entrypoint of faultline/postgres, a stand-in for the official `postgres` image, which
# cannot be pulled here. It follows that image's contract where the harness could notice:
#
#   POSTGRES_PASSWORD          superuser password; required unless
#   POSTGRES_HOST_AUTH_METHOD  is "trust" (default scram-sha-256, used for remote hosts)
#   POSTGRES_USER              superuser name (default postgres)
#   POSTGRES_DB                database created on first start (default: $POSTGRES_USER)
#   POSTGRES_INITDB_ARGS       extra initdb arguments
#   PGDATA                     data directory (image default /var/lib/postgresql/data)
#   /docker-entrypoint-initdb.d/*.sql|*.sh   run once after the first initdb
#
# Arguments: `docker run IMAGE -c fsync=off` runs `postgres -c fsync=off`, as in the
# official image; a first argument that is not an option is run as a command instead.
set -Eeuo pipefail

# `docker run IMAGE -c x=y`: the arguments are options for postgres.
if [[ $# -eq 0 || ${1:0:1} == '-' ]]; then
    set -- postgres "$@"
fi

# Anything other than the server (e.g. `docker run -it IMAGE bash`) runs as given.
if [[ $1 != postgres ]]; then
    exec "$@"
fi

# As root: make the data and socket folders the postgres user's, then re-run this script
# as that user. setpriv (util-linux, in every Debian base) replaces the process like the
# official image's gosu does, so postgres ends up as PID 1 and gets `docker stop`'s SIGINT.
if [[ $(id -u) == 0 ]]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    chmod 2777 /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
: "${POSTGRES_INITDB_ARGS:=}"

log() { echo "docker-entrypoint: $*" >&2; }

if [[ ! -s $PGDATA/PG_VERSION ]]; then
    if [[ -z ${POSTGRES_PASSWORD:-} && $POSTGRES_HOST_AUTH_METHOD != trust ]]; then
        cat >&2 <<'EOF'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
       (Or set POSTGRES_HOST_AUTH_METHOD=trust to allow connections without one.)
EOF
        exit 1
    fi

    log "initializing database cluster in $PGDATA"
    # Local (socket) connections are trusted, as in the official image; the password is set
    # for the superuser and asked of every connection over TCP (pg_hba line below).
    pwfile=$(mktemp)
    printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
    # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a word list, as in the official image
    initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \
        --auth-host="$POSTGRES_HOST_AUTH_METHOD" $POSTGRES_INITDB_ARGS
    rm -f "$pwfile"

    # Listen on every interface of the container (the official image's default), and
    # accept any client address with the chosen method.
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    echo "host all all all $POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"

    # A temporary server on the Unix socket only (nobody can connect from outside before
    # setup is complete) to create the database and run init scripts.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
    psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres)
    if [[ $POSTGRES_DB != postgres ]]; then
        log "creating database $POSTGRES_DB"
        "${psql[@]}" --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        [[ -e $f ]] || continue
        # shellcheck disable=SC1090  # init scripts are the user's
        case $f in
            *.sh) log "running $f"; . "$f" ;;
            *.sql) log "running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
            *) log "ignoring $f" ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop
    log "PostgreSQL init process complete; ready for start up."
fi

# Foreground server; it logs "database system is ready to accept connections" when ready.
exec "$@"
