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
