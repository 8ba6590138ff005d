-- No parameters: whether the partition_switchover schema's claims table exists.
select to_regclass('partition_switchover.claims') is not null as ok
