//! Business gauges from configured SQL queries against a named PostgreSQL target.
