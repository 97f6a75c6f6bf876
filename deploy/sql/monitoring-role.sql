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
-- Re-running it is safe: it only resets the password and the grant.
\set ON_ERROR_STOP on

SELECT 'CREATE ROLE opsmon LOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'opsmon') \gexec

ALTER ROLE opsmon WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
    PASSWORD :'password' CONNECTION LIMIT 5;
GRANT pg_monitor TO opsmon;

-- The exporter sets these per session too; they guard other clients using the role.
ALTER ROLE opsmon SET statement_timeout = '5s';
ALTER ROLE opsmon SET lock_timeout = '1s';
