-- $1 table oid: its replica identity (d default, f full, i using index, n nothing).
select relreplident::text as r from pg_class where oid = $1::oid
