-- Plans are data: operators change them with SQL or the admin API, not code.
INSERT INTO "plans" ("id", "name", "allows_platform_keys", "daily_credits", "requests_per_minute", "features") VALUES
  ('free', 'Free', true, 100, 20, '{"image_generation": false, "voice": false}'::jsonb),
  ('premium', 'Premium', true, 1000, 60, '{"image_generation": true, "voice": true}'::jsonb),
  ('vip', 'VIP', true, 5000, 180, '{"image_generation": true, "voice": true}'::jsonb)
ON CONFLICT ("id") DO NOTHING;
