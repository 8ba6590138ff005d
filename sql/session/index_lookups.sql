-- Settings of this transaction: rows by key are looked up by index, key after key, never by a
-- scan of every partition (a repair's DELETE by the table's key without the partition key was
-- planned as a hash join over a sequential scan of each partition: its time grew with the table,
-- 10M rows ran past the lock budget). No parameters, no rows.
set local enable_seqscan = off; set local enable_hashjoin = off; set local enable_mergejoin = off
