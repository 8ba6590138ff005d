-- the foreign keys of table $1 (regclass text), its own (not inherited): name, definition
select con.conname as name, pg_get_constraintdef(con.oid) as definition from pg_constraint con
  where con.conrelid = $1::regclass and con.contype = 'f' and con.conparentid = 0 order by con.conname
