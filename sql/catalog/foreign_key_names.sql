select conname from pg_constraint where conrelid = $1::regclass and contype = 'f'
