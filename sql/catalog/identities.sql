-- $1 table oid: identity columns with their sequence and its options.
select a.attname as column, a.attidentity::text as kind, s.relname as sequence,
       q.seqstart::text as start, q.seqincrement::text as increment, q.seqmin::text as min,
       q.seqmax::text as max, q.seqcache::text as cache, q.seqcycle as cycle
from pg_attribute a
join pg_depend d on d.refclassid = 'pg_class'::regclass and d.refobjid = a.attrelid and d.refobjsubid = a.attnum
  and d.classid = 'pg_class'::regclass and d.deptype = 'i'
join pg_class s on s.oid = d.objid and s.relkind = 'S'
join pg_sequence q on q.seqrelid = s.oid
where a.attrelid = $1::oid and a.attidentity <> '' and not a.attisdropped
order by a.attnum
