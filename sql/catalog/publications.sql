-- $1 table oid: the publications that publish the table and how: by name ('table', with its
-- column list and row filter, PostgreSQL 15), FOR ALL TABLES ('all'), or FOR TABLES IN SCHEMA
-- ('schema': the table's schema or partition_switchover's, which holds our change log); and
-- whether a partitioned table's changes go out under its root's name (pubviaroot). Preflight
-- reads it with search_path = pg_catalog, so the row filter names every relation with its schema.
-- changes_rows: it publishes UPDATE or DELETE (whose old rows the replica identity identifies).
select p.pubname as name, p.pubviaroot as via_root, 'table' as how, p.pubupdate or p.pubdelete as changes_rows,
       (select array_agg(a.attname::text order by a.attnum) from pg_attribute a
         where a.attrelid = r.prrelid and a.attnum = any(r.prattrs::int2[])) as columns,
       pg_get_expr(r.prqual, r.prrelid) as row_filter
from pg_publication_rel r join pg_publication p on p.oid = r.prpubid
where r.prrelid = $1::oid
union all
select p.pubname, p.pubviaroot, 'all', p.pubupdate or p.pubdelete, null, null from pg_publication p where p.puballtables
union all
select p.pubname, p.pubviaroot, 'schema', p.pubupdate or p.pubdelete, null, null
from pg_publication_namespace pn join pg_publication p on p.oid = pn.pnpubid
where pn.pnnspid in (select c.relnamespace from pg_class c where c.oid = $1::oid
                     union select n.oid from pg_namespace n where n.nspname = 'partition_switchover')
order by 1, 3
