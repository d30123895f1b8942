#!/bin/sh
# compose: on the database's first start (docker-entrypoint-initdb.d), create the ioc database and its
# roles from migrations/roles.sql, the same script `ioc up` runs on its own cluster. The passwords are
# in this container's environment (IOC_DB_*_PASSWORD), never on a command line.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -f /ioc/roles.sql
