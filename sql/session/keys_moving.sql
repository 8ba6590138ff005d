-- marks this transaction's writes, until keys_moved, as a partition move (a partition's rows deleted there and inserted again through the table): the key table of the foreign keys into the table keeps their keys; no parameters
select set_config('partition_switchover.keys', 'moving', true)
