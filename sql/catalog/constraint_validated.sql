select convalidated from pg_constraint where conrelid = $1::regclass and conname = $2::text
