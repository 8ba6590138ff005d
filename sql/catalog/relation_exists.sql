-- whether the relation named $1 (text, qualified as needed) exists (ok)
select to_regclass($1::text) is not null as ok
