-- $1 table oid: sequences owned by its columns (serial / OWNED BY), not identity ones.
select s.relname as sequence, a.attname as column
from pg_depend d
join pg_class s on s.oid = d.objid and s.relkind = 'S'
join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
where d.refobjid = $1::oid and d.classid = 'pg_class'::regclass and d.deptype = 'a'
order by a.attnum
