-- deploy/sql/schema.sql — the SmarTalk analytics schema the default business
-- queries in deploy/opsmon.yml read. Idempotent.
--
--   psql -d smartalk_db -f deploy/sql/schema.sql

CREATE TABLE IF NOT EXISTS analytics_events (
    id          bigserial   PRIMARY KEY,
    user_id     integer     NOT NULL,
    event_type  text        NOT NULL CHECK (event_type IN
                ('signup', 'activation', 'lesson_started', 'lesson_completed', 'purchase', 'feedback')),
    "timestamp" timestamptz NOT NULL DEFAULT now(),
    properties  jsonb       NOT NULL DEFAULT '{}'
);

-- The operations guide's index ("优化索引"): every business query filters on a
-- recent time window. Carrying user_id lets "active users" run as an
-- index-only scan.
CREATE INDEX IF NOT EXISTS idx_analytics_events_timestamp
    ON analytics_events ("timestamp") INCLUDE (user_id);

-- Per event type and window (activation ratio, funnel, feedback).
CREATE INDEX IF NOT EXISTS idx_analytics_events_type_timestamp
    ON analytics_events (event_type, "timestamp") INCLUDE (user_id);

-- The latest event per (event type, user), and per user of any type
-- (event_type ''): what every "distinct users in a window" business query
-- needs. Counting distinct users over the raw events reads every event in the
-- window (the funnel's 7 days hold ~2M events at 10M); this summary holds one
-- row per user and type, so those queries read one index entry per user.
-- Kept exact by statement-level triggers on analytics_events; the cost is
-- one grouped upsert per INSERT statement.
CREATE TABLE IF NOT EXISTS analytics_events_last_seen (
    event_type text        NOT NULL,
    user_id    integer     NOT NULL,
    last_seen  timestamptz NOT NULL,
    PRIMARY KEY (event_type, user_id)
);
CREATE INDEX IF NOT EXISTS analytics_events_last_seen_type_time
    ON analytics_events_last_seen (event_type, last_seen) INCLUDE (user_id);
-- Recomputing a (type, user) pair after a delete or update reads its events
-- by user.
CREATE INDEX IF NOT EXISTS idx_analytics_events_user_type_timestamp
    ON analytics_events (user_id, event_type, "timestamp");

CREATE OR REPLACE FUNCTION analytics_events_last_seen_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO analytics_events_last_seen AS l (event_type, user_id, last_seen)
    SELECT coalesce(event_type, ''), user_id, max("timestamp") FROM inserted
    GROUP BY GROUPING SETS ((event_type, user_id), (user_id))
    ON CONFLICT (event_type, user_id) DO UPDATE SET last_seen = excluded.last_seen
        WHERE l.last_seen < excluded.last_seen;
    RETURN NULL;
END $$;

-- After a delete or an update the latest event of a touched pair may be
-- gone: recompute those pairs from what is left (an index-only probe each).
CREATE OR REPLACE FUNCTION analytics_events_last_seen_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM analytics_events_last_seen l
    USING (SELECT event_type, user_id FROM removed UNION SELECT '', user_id FROM removed) t
    WHERE l.event_type = t.event_type AND l.user_id = t.user_id;
    INSERT INTO analytics_events_last_seen (event_type, user_id, last_seen)
    SELECT t.event_type, t.user_id, m.last_seen
    FROM (SELECT event_type, user_id FROM removed UNION SELECT '', user_id FROM removed) t
    CROSS JOIN LATERAL (SELECT max(e."timestamp") AS last_seen FROM analytics_events e
                        WHERE e.user_id = t.user_id AND (t.event_type = '' OR e.event_type = t.event_type)) m
    WHERE m.last_seen IS NOT NULL;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION analytics_events_last_seen_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM analytics_events_last_seen l
    USING (SELECT event_type, user_id FROM removed UNION SELECT event_type, user_id FROM added
          UNION SELECT '', user_id FROM removed UNION SELECT '', user_id FROM added) t
    WHERE l.event_type = t.event_type AND l.user_id = t.user_id;
    INSERT INTO analytics_events_last_seen (event_type, user_id, last_seen)
    SELECT t.event_type, t.user_id, m.last_seen
    FROM (SELECT event_type, user_id FROM removed UNION SELECT event_type, user_id FROM added
          UNION SELECT '', user_id FROM removed UNION SELECT '', user_id FROM added) t
    CROSS JOIN LATERAL (SELECT max(e."timestamp") AS last_seen FROM analytics_events e
                        WHERE e.user_id = t.user_id AND (t.event_type = '' OR e.event_type = t.event_type)) m
    WHERE m.last_seen IS NOT NULL;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION analytics_events_last_seen_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE analytics_events_last_seen;
    RETURN NULL;
END $$;

-- DROP + CREATE (not CREATE OR REPLACE TRIGGER, PostgreSQL 14+) for older
-- servers; without the "does not exist, skipping" notices.
SET client_min_messages = warning;
DROP TRIGGER IF EXISTS analytics_events_last_seen_insert ON analytics_events;
CREATE TRIGGER analytics_events_last_seen_insert AFTER INSERT ON analytics_events
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION analytics_events_last_seen_inserted();
DROP TRIGGER IF EXISTS analytics_events_last_seen_delete ON analytics_events;
CREATE TRIGGER analytics_events_last_seen_delete AFTER DELETE ON analytics_events
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION analytics_events_last_seen_deleted();
DROP TRIGGER IF EXISTS analytics_events_last_seen_update ON analytics_events;
CREATE TRIGGER analytics_events_last_seen_update AFTER UPDATE ON analytics_events
    REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION analytics_events_last_seen_updated();
DROP TRIGGER IF EXISTS analytics_events_last_seen_truncate ON analytics_events;
CREATE TRIGGER analytics_events_last_seen_truncate AFTER TRUNCATE ON analytics_events
    FOR EACH STATEMENT EXECUTE FUNCTION analytics_events_last_seen_truncated();
RESET client_min_messages;

-- Backfill rows that predate the triggers (idempotent: a no-op when complete).
INSERT INTO analytics_events_last_seen AS l (event_type, user_id, last_seen)
SELECT coalesce(event_type, ''), user_id, max("timestamp") FROM analytics_events
GROUP BY GROUPING SETS ((event_type, user_id), (user_id))
ON CONFLICT (event_type, user_id) DO UPDATE SET last_seen = excluded.last_seen
    WHERE l.last_seen < excluded.last_seen;
