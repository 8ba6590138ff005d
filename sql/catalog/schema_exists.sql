-- whether schema $1 (text) exists (ok)
select exists (select 1 from pg_namespace where nspname = $1::text) as ok
