-- $1 table oid: foreign keys out of the table and into it.
select con.conname as name, pg_get_constraintdef(con.oid) as definition,
       case when con.conrelid = $1::oid then 'out' else 'in' end as direction,
       con.conrelid::regclass::text as from_table
from pg_constraint con
where con.contype = 'f' and (con.conrelid = $1::oid or con.confrelid = $1::oid)
order by con.conname
