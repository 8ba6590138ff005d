-- $1 table oid, $2 names of our own triggers: the application's BEFORE ... FOR EACH ROW triggers
-- on INSERT or UPDATE (those can change the partition key of the row being written), with their
-- function, its language and source.
select t.tgname as name, t.tgfoid::regprocedure::text as function, l.lanname as language, p.prosrc as source,
       t.tgenabled::text as enabled
from pg_trigger t
join pg_proc p on p.oid = t.tgfoid
join pg_language l on l.oid = p.prolang
where t.tgrelid = $1::oid and not t.tgisinternal and t.tgname <> all($2::text[])
  and (t.tgtype & 3) = 3 and (t.tgtype & (4 | 16)) <> 0
order by t.tgname
