-- $1 schema, $2 function names: those of the names that exist as functions in the schema.
select p.proname::text as name from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = $1::text and p.proname = any($2::text[])
