-- ends keys_moving: the key table follows this transaction's writes again; no parameters
select set_config('partition_switchover.keys', '', true)
