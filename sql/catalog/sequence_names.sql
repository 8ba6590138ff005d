-- whether the sequence named $1 (text, qualified) exists (legacy) and whether the name $2 (text, qualified) is taken (taken)
select to_regclass($1::text) is not null as legacy, to_regclass($2::text) is not null as taken
