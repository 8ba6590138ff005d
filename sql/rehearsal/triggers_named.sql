-- $1 qualified table name, $2 trigger names: those of the names that are triggers on the table.
select tgname::text as name from pg_trigger where tgrelid = to_regclass($1::text) and tgname = any($2::text[])
