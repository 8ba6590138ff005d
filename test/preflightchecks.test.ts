// Preflight's pure part pinned (src/preflightchecks.ts): the index plans' statements, and messages.
import { indexPlansFor, indexProblems, type IndexRow, namesFor, ownerProblems } from '../src/preflightchecks';

const row = (over: Partial<IndexRow>): IndexRow => ({
  name: 'i',
  is_primary: false,
  is_unique: false,
  constraint_type: null,
  constraint_def: null,
  columns: [],
  has_expressions: false,
  using_clause: '',
  ...over,
});

test('index plans: the primary key by the key step, a unique constraint added by its definition, an index created under its temporary name', () => {
  const plans = indexPlansFor(
    [
      row({ name: 'revenues_pkey', is_primary: true, is_unique: true, constraint_type: 'p', columns: ['id'] }),
      row({ name: 'rev_u', is_unique: true, constraint_type: 'u', constraint_def: 'UNIQUE (id, occurred_at)', columns: ['id', 'occurred_at'] }),
      row({ name: 'rev_status', columns: ['status'], using_clause: 'btree (status)' }),
    ],
    'public',
    namesFor('revenues'),
  );
  expect(plans).toEqual([
    { name: 'revenues_pkey', tempName: 'revenues_pkey_ps', legacyName: 'revenues_pkey_legacy', isPrimary: true, createSql: '' },
    {
      name: 'rev_u',
      tempName: 'rev_u_ps',
      legacyName: 'rev_u_legacy',
      isPrimary: false,
      createSql: 'ALTER TABLE "public"."revenues_partitioned" ADD CONSTRAINT "rev_u_ps" UNIQUE (id, occurred_at)',
    },
    {
      name: 'rev_status',
      tempName: 'rev_status_ps',
      legacyName: 'rev_status_legacy',
      isPrimary: false,
      index: { unique: false, using: 'USING btree (status)' },
      createSql: 'CREATE INDEX IF NOT EXISTS "rev_status_ps" ON "public"."revenues_partitioned" USING btree (status)',
    },
  ]);
});

test('refusals name the fix', () => {
  expect(indexProblems([row({ name: 'u2', is_unique: true, columns: ['status'] })], 'public.revenues', 'occurred_at')).toEqual([
    'public.revenues has no primary key; add one (the copy, triggers and verification match rows by it)',
    'unique index u2 on public.revenues (status) does not include the partition key occurred_at; PostgreSQL cannot enforce it on a partitioned table. Add occurred_at to it or drop it first',
  ]);
  expect(ownerProblems({ superuser: false, owner: 'app', me: 'worker', acts_as_owner: false }, 'public.revenues', 'public')).toEqual([
    `public.revenues is owned by role app, and the worker's role worker is neither superuser nor a member of it, so it cannot give the new table the same owner; run GRANT "app" TO "worker" and start again`,
  ]);
  expect(ownerProblems({ superuser: false, owner: 'app', me: 'app' }, 'public.revenues', 'public')).toEqual([]);
});
