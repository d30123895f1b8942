-- The database and its roles, created by a superuser connected to the "postgres" database (psql).
-- Idempotent: run again, it sets the passwords and changes nothing else. Used by `ioc up` when it creates
-- its cluster and by compose's database on its first start (scripts/db-init.sh).
-- The passwords come from the environment, never from the command line (other users can read that):
--   IOC_DB_OWNER_PASSWORD   ioc_owner: owns the database and the schema, runs the migrations
--   IOC_DB_INGEST_PASSWORD  ioc_ingest: the ingest workers
--   IOC_DB_SERVE_PASSWORD   ioc_serve: the API and dashboard servers
--   IOC_DB_READ_PASSWORD    ioc_read: read-only, for exports and open data
-- None is a superuser or may create roles or databases; what each may touch is ioc/grants.py.
\set ON_ERROR_STOP on
\getenv owner_password IOC_DB_OWNER_PASSWORD
\getenv ingest_password IOC_DB_INGEST_PASSWORD
\getenv serve_password IOC_DB_SERVE_PASSWORD
\getenv read_password IOC_DB_READ_PASSWORD

SELECT format('CREATE ROLE %I', name) FROM unnest(ARRAY['ioc_owner', 'ioc_ingest', 'ioc_serve', 'ioc_read']) AS name
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) \gexec

ALTER ROLE ioc_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'owner_password';
ALTER ROLE ioc_ingest LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'ingest_password';
ALTER ROLE ioc_serve LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'serve_password';
ALTER ROLE ioc_read LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'read_password';

SELECT 'CREATE DATABASE ioc OWNER ioc_owner' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'ioc') \gexec

-- Nobody else may even connect; the workers may create temporary tables (the ingest's COPY staging).
REVOKE ALL ON DATABASE ioc FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE ioc TO ioc_ingest, ioc_serve;
GRANT CONNECT ON DATABASE ioc TO ioc_read;

\connect ioc
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO ioc_ingest, ioc_serve, ioc_read;
