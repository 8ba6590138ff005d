-- $1 table oid: live columns in order.
select a.attname as name, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as not_null,
       a.attgenerated <> '' as generated, a.attidentity::text as identity
from pg_attribute a
where a.attrelid = $1::oid and a.attnum > 0 and not a.attisdropped
order by a.attnum
