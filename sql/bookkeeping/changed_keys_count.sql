-- Entries of table $1 in the change log (what a comparison has not yet compared and forgotten).
select count(*)::bigint as n from partition_switchover.changed_keys where table_oid = to_regclass($1::text)
