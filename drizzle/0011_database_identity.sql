-- The database's identity: a random id made once per database. Shared cache keys (Redis) carry it
-- (with the database's oid), so a database that is recreated or restored behind a kept Redis never
-- meets the cached rows of the one before it.
INSERT INTO "system_settings" ("key", "value") VALUES ('database_identity', to_jsonb(gen_random_uuid()::text)) ON CONFLICT ("key") DO NOTHING;
