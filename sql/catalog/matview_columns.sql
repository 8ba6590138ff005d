-- $1 a relation's qualified name: its columns in order, with type and modifier (a rebuilt materialized view must have the same).
select a.attname as name, a.atttypid::bigint as type_oid, a.atttypmod as typmod, format_type(a.atttypid, a.atttypmod) as type
from pg_attribute a where a.attrelid = to_regclass($1::text) and a.attnum > 0 and not a.attisdropped order by a.attnum
