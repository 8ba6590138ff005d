-- Demo workload: a hospitality group's finance tables, as they look before the switchover
-- (plain heap tables with bigserial keys). Run once into an empty database; demo/seed.ts does
-- that when the tables are missing.

create table organizations (
  id bigserial primary key,
  name text not null,
  created_at timestamptz not null default now()
);

-- property_id is a plain integer (no properties table): the switchover only cares about the
-- tables that grow by time.

create table revenues (
  id bigserial primary key,
  organization_id bigint not null references organizations (id),
  property_id int not null,
  occurred_at timestamptz not null,
  amount_cents bigint not null check (amount_cents >= 0),
  currency char(3) not null default 'USD',
  category text not null,
  status text not null default 'posted' check (status in ('pending', 'posted', 'void')),
  description text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index revenues_organization_id_occurred_at_idx on revenues (organization_id, occurred_at);
create index revenues_status_idx on revenues (status);

create table expenses (
  id bigserial primary key,
  organization_id bigint not null references organizations (id),
  property_id int not null,
  occurred_at timestamptz not null,
  amount_cents bigint not null check (amount_cents >= 0),
  currency char(3) not null default 'USD',
  category text not null,
  status text not null default 'posted' check (status in ('pending', 'posted', 'void')),
  vendor text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index expenses_organization_id_occurred_at_idx on expenses (organization_id, occurred_at);
create index expenses_category_idx on expenses (category);

-- The unique key contains balance_date, so it survives partitioning by balance_date unchanged
-- (a unique constraint on a partitioned table must include the partition key).
create table daily_cash_balances (
  id bigserial primary key,
  organization_id bigint not null references organizations (id),
  property_id int not null,
  balance_date date not null,
  opening_cents bigint not null,
  closing_cents bigint not null,
  updated_at timestamptz not null default now(),
  unique (organization_id, property_id, balance_date)
);
