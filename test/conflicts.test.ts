// Which application statements (as pg_stat_statements records them) the widened primary key breaks.
import { conflictTargetsAffected, widenedKeyNote } from '../src/conflicts';

const opts = { table: 'revenues', key: ['id'], constraint: 'revenues_pkey' };

test('statements whose conflict target is the old primary key, by columns or by constraint name', () => {
  const queries = [
    'INSERT INTO revenues (id, amount) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET amount = EXCLUDED.amount',
    'insert into public."revenues" (id) values ($1) on conflict ("id") do nothing',
    'INSERT INTO revenues VALUES ($1) ON CONFLICT ON CONSTRAINT revenues_pkey DO NOTHING',
    'INSERT INTO revenues VALUES ($1) ON CONFLICT ON CONSTRAINT "revenues_pkey" DO NOTHING',
    // Not affected: the wider key, another table, another constraint, no conflict target.
    'INSERT INTO revenues (id, occurred_at) VALUES ($1, $2) ON CONFLICT (id, occurred_at) DO NOTHING',
    'INSERT INTO revenues_archive (id) VALUES ($1) ON CONFLICT (id) DO NOTHING',
    'INSERT INTO expenses (id) VALUES ($1) ON CONFLICT (id) DO NOTHING',
    'INSERT INTO revenues VALUES ($1) ON CONFLICT ON CONSTRAINT revenues_ref_key DO NOTHING',
    'INSERT INTO revenues VALUES ($1) ON CONFLICT DO NOTHING',
  ];
  expect(conflictTargetsAffected(queries, opts)).toEqual(queries.slice(0, 4));
  expect(
    conflictTargetsAffected(['INSERT INTO t VALUES ($1, $2) ON CONFLICT (b, a) DO NOTHING'], { table: 't', key: ['a', 'b'], constraint: 't_pkey' }),
  ).toHaveLength(1);
});

test('the plan note names both keys and the rule until cleanup', () => {
  expect(widenedKeyNote({ table: 'public.revenues', key: ['id'], partitionKey: 'occurred_at' })).toBe(
    'the primary key of public.revenues widens from (id) to (id, occurred_at): an application statement with ON CONFLICT (id) fails after cutover ' +
      '(no unique index matches it; write ON CONFLICT (id, occurred_at)), and ON CONFLICT ON CONSTRAINT then conflicts only on the wider key. ' +
      'Until cleanup, an insert that reuses an existing id in another period fails (the legacy table, kept for rollback, still enforces (id)); after cleanup it is accepted',
  );
});
