-- deploy/sql/demo-data.sql — fills analytics_events (deploy/sql/schema.sql)
-- with a realistic SmarTalk funnel over the last 30 days, up to now, so every
-- default business query has data in every window.
--
--   psql -d smartalk_db -v users=5000 -f deploy/sql/demo-data.sql
--
-- Funnel: every user signs up; about 45% activate within a day; activated
-- users start lessons every few hours (70% of them completed); 12% of the
-- activated buy a plan; 25% leave in-app feedback rated 1–5 (1–2 negative).
-- The last hour gets recent activity so the 5-minute and 1-hour windows are
-- not empty. Re-running adds another batch of users.
\set ON_ERROR_STOP on
\if :{?users}
\else
  \set users 5000
\endif

BEGIN;
CREATE TEMP TABLE demo_users ON COMMIT DROP AS
SELECT coalesce((SELECT max(user_id) FROM analytics_events), 0) + g AS user_id,
       now() - random() * interval '30 days' AS signed_up,
       random() AS activates,
       random() AS engagement
FROM generate_series(1, :users) AS g;

-- Signups.
INSERT INTO analytics_events (user_id, event_type, "timestamp", properties)
SELECT user_id, 'signup', signed_up,
       jsonb_build_object('source', (ARRAY['organic', 'ads', 'referral', 'social'])[1 + (random() * 3)::int],
                          'platform', (ARRAY['web', 'ios', 'android'])[1 + (random() * 2)::int])
FROM demo_users;

-- Activations, within a day of signing up. An event that would lie in the
-- future has not happened yet and is left out (clamping it to now() piled
-- every such event into the last second: at 10M events, 70% of the last
-- hour's events).
INSERT INTO analytics_events (user_id, event_type, "timestamp")
SELECT user_id, 'activation', at
FROM (SELECT user_id, signed_up + random() * interval '1 day' AS at FROM demo_users WHERE activates < 0.45) a
WHERE at < now();

-- Lessons of activated users: up to 12, a few hours apart, until now.
INSERT INTO analytics_events (user_id, event_type, "timestamp", properties)
SELECT u.user_id, 'lesson_started', u.signed_up + l.n * interval '4 hours' + random() * interval '2 hours',
       jsonb_build_object('lesson_id', l.n, 'level', (ARRAY['A1', 'A2', 'B1', 'B2'])[1 + (random() * 3)::int])
FROM demo_users u
CROSS JOIN LATERAL generate_series(1, 1 + (u.engagement * 11)::int) AS l(n)
WHERE u.activates < 0.45
  AND u.signed_up + l.n * interval '4 hours' + interval '2 hours' < now();

INSERT INTO analytics_events (user_id, event_type, "timestamp", properties)
SELECT user_id, 'lesson_completed', at, jsonb_build_object('lesson_id', lesson_id, 'score', (random() * 100)::int)
FROM (SELECT user_id, "timestamp" + random() * interval '40 minutes' AS at, properties -> 'lesson_id' AS lesson_id
      FROM analytics_events
      WHERE event_type = 'lesson_started' AND user_id IN (SELECT user_id FROM demo_users) AND random() < 0.7) c
WHERE at < now();

-- Purchases and feedback.
INSERT INTO analytics_events (user_id, event_type, "timestamp", properties)
SELECT user_id, 'purchase', at,
       jsonb_build_object('plan', (ARRAY['monthly', 'annual'])[1 + (random())::int], 'currency', 'EUR')
FROM (SELECT user_id, signed_up + random() * interval '10 days' AS at FROM demo_users
      WHERE activates < 0.45 AND random() < 0.12) p
WHERE at < now();

INSERT INTO analytics_events (user_id, event_type, "timestamp", properties)
SELECT user_id, 'feedback', at, jsonb_build_object('rating', 1 + (random() * 4)::int, 'channel', 'in_app')
FROM (SELECT user_id, signed_up + random() * interval '14 days' AS at FROM demo_users
      WHERE activates < 0.45 AND random() < 0.25) f
WHERE at < now();

-- Recent activity: 3% of the users active in the last hour, a few of them
-- in the last five minutes.
INSERT INTO analytics_events (user_id, event_type, "timestamp", properties)
SELECT user_id, 'lesson_started', now() - random() * interval '1 hour', '{"lesson_id": 0}'
FROM demo_users WHERE engagement > 0.97;
INSERT INTO analytics_events (user_id, event_type, "timestamp", properties)
SELECT user_id, 'lesson_completed', now() - random() * interval '5 minutes', '{"lesson_id": 0}'
FROM demo_users WHERE engagement > 0.995;
COMMIT;

ANALYZE analytics_events;
