update partition_switchover.created set released_at = now() where id = $1::bigint
