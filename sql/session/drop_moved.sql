-- drops the temporary table of rows being moved between partitions (src/maintenancesql.ts moveOutSql); no parameters
drop table ps_moved
