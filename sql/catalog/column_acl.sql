-- $1 table oid: column privileges (GRANT ... (column)), as aclitem text per column.
select a.attname as column, a.attacl::text[] as acl
from pg_attribute a
where a.attrelid = $1::oid and a.attnum > 0 and not a.attisdropped and a.attacl is not null
order by a.attnum
