// The plan's statements pinned as exact strings (src/plansql.ts): prepare's, the dry run's, names.
import { addConstraintSql, ownerSql, prepareSql, prepareSteps, renderPlanSql, tempName } from '../src/plansql';
import { col, revenuesPlan } from './fixtures';

const tp = revenuesPlan(col('status', 'text'), {
  owner: 'app',
  comment: "it's",
  policies: ['CREATE POLICY x'],
  defaultPartition: true,
  changeLog: true,
  indexes: [
    { name: 'revenues_pkey', tempName: 'revenues_pkey_ps', createSql: '', isPrimary: true },
    { name: 'rev_u', tempName: 'rev_u_ps', createSql: 'ALTER TABLE x ADD CONSTRAINT y UNIQUE (id, occurred_at)', isPrimary: false },
  ],
  foreignKeys: [{ name: 'fk', definition: 'FOREIGN KEY (a) REFERENCES "public"."b"(id)' }],
});

test('names and small statements', () => {
  expect(tempName('revenues_pkey')).toBe('revenues_pkey_ps');
  expect(tempName('x'.repeat(63))).toBe(`${'x'.repeat(40)}_7dc2ca_ps`);
  expect(ownerSql('public', 'a"b', 'o"wner')).toBe('ALTER TABLE "public"."a""b" OWNER TO "o""wner"');
  expect(addConstraintSql('public', 'revenues_partitioned', 'u_ps', 'UNIQUE (id)')).toBe(
    'ALTER TABLE "public"."revenues_partitioned" ADD CONSTRAINT "u_ps" UNIQUE (id)',
  );
});

test('prepare: the head in one transaction, each partition with its owner and, with guards, its direct-write trigger', () => {
  const guard = (p: string) => [
    `CREATE OR REPLACE TRIGGER "ps_direct_write" BEFORE INSERT OR UPDATE OR DELETE ON "public"."${p}" FOR EACH STATEMENT WHEN (pg_trigger_depth() < 1) EXECUTE FUNCTION partition_switchover.note_direct_write()`,
    `ALTER TABLE "public"."${p}" ENABLE ALWAYS TRIGGER "ps_direct_write"`,
  ];
  expect(prepareSteps(tp, { guards: true })).toEqual({
    head: [
      'CREATE TABLE IF NOT EXISTS "public"."revenues_partitioned" (LIKE "public"."revenues" INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING COMMENTS INCLUDING STORAGE INCLUDING COMPRESSION) PARTITION BY RANGE ("occurred_at")',
      'ALTER TABLE "public"."revenues_partitioned" OWNER TO "app"',
      'ALTER TABLE "public"."revenues_partitioned" ADD CONSTRAINT "revenues_pkey_ps" PRIMARY KEY ("id", "occurred_at")',
      'ALTER TABLE x ADD CONSTRAINT y UNIQUE (id, occurred_at)',
      `COMMENT ON TABLE "public"."revenues_partitioned" IS 'it''s'`,
      'CREATE POLICY x',
    ],
    partitions: [
      {
        name: 'revenues_p202401',
        sql: [
          `CREATE TABLE IF NOT EXISTS "public"."revenues_p202401" PARTITION OF "public"."revenues_partitioned" FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2024-02-01 00:00:00+00') WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false)`,
          'ALTER TABLE "public"."revenues_p202401" OWNER TO "app"',
          ...guard('revenues_p202401'),
        ],
      },
      {
        name: 'revenues_default',
        sql: [
          'CREATE TABLE IF NOT EXISTS "public"."revenues_default" PARTITION OF "public"."revenues_partitioned" DEFAULT WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false)',
          'ALTER TABLE "public"."revenues_default" OWNER TO "app"',
          ...guard('revenues_default'),
        ],
      },
    ],
  });
  // Without guards (the dry run's list): the head, then each partition's statements.
  const steps = prepareSteps(tp);
  expect(prepareSql(tp)).toEqual([...steps.head, ...steps.partitions.flatMap((p) => p.sql)]);
  expect(prepareSql(tp).some((s) => s.includes('ps_direct_write'))).toBe(false);
});

test('the dry run lists every stage; the foreign keys come with the indexes', () => {
  const plan = renderPlanSql(tp);
  expect(Object.keys(plan)).toEqual(['backup', 'prepare', 'triggers', 'copy', 'index', 'verify', 'cutover', 'cleanup']);
  expect(plan.prepare).toEqual(prepareSql(tp));
  expect(plan.index).toEqual(['ALTER TABLE "public"."revenues_partitioned" ADD CONSTRAINT "fk" FOREIGN KEY (a) REFERENCES "public"."b"(id)']);
});
