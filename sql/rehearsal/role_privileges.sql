-- $1 schema: the current role, whether it may create in the schema, and whether it may create the partition_switchover schema (or it exists).
select current_user as role, has_schema_privilege($1::text, 'CREATE') as schema_create,
       has_database_privilege(current_database(), 'CREATE') or to_regnamespace('partition_switchover') is not null as db_create
