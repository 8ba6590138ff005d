-- $1 table oid: live columns, with the base name of their type (for the change an update makes)
-- and their default expression (to tell a key that draws its own value).
select a.attname as name, format_type(a.atttypid, a.atttypmod) as type, t.typname as base,
       t.typtype::text as typtype, a.atttypmod as typmod, a.attnotnull as not_null,
       a.attgenerated <> '' as generated, a.attidentity::text as identity,
       pg_get_expr(d.adbin, d.adrelid) as default
from pg_attribute a
join pg_type t on t.oid = a.atttypid
left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum and a.attgenerated = ''
where a.attrelid = $1::oid and a.attnum > 0 and not a.attisdropped
order by a.attnum
