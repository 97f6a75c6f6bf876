-- deploy/sql/monitoring-role.sql — a login role for opsmon-exporter with
-- pg_monitor only: it can read the statistics views and database sizes, and
-- nothing else (no table data, no DDL).
--
-- Run as a superuser, passing the password as a psql variable so it never
-- lands in this file or in shell history as part of the SQL:
--
--   read -rs OPSMON_PG_PASSWORD
--   psql -U postgres -v password="$OPSMON_PG_PASSWORD" -f deploy/sql/monitoring-role.sql
--
-- Re-running it is safe: it only resets the password, the limit and the grant.
--
-- CONNECTION LIMIT: one exporter logging in as this role holds at most one
-- connection per target it is scraping at that moment (two when /metrics and
-- /probe?target= overlap) plus two for the business queries: 3 to 4 with the
-- shipped config. 10 leaves room for a second exporter watching the same
-- database (the many-hosts layout) and a psql session by hand; raise it by 4
-- for each further exporter. At the limit PostgreSQL refuses the login
-- ("too many connections for role") and that exporter shows pg_up 0.
\set ON_ERROR_STOP on

SELECT 'CREATE ROLE opsmon LOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'opsmon') \gexec

ALTER ROLE opsmon WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
    PASSWORD :'password' CONNECTION LIMIT 10;
GRANT pg_monitor TO opsmon;

-- The exporter sets these per session too; they guard other clients using the role.
ALTER ROLE opsmon SET statement_timeout = '5s';
ALTER ROLE opsmon SET lock_timeout = '1s';
