select n.nspname as schema, c.relname as name, pg_get_userbyid(c.relowner) as owner
  from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = to_regclass($1::text)
