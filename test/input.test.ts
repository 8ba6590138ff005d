// The input schema: defaults, and errors that name the offending field.
import { describeIssues, switchoverInput } from '../src/input';

const ok = { tables: [{ table: 'revenues', partitionKey: 'occurred_at', interval: 'month' }] };

test('only tables is required; the rest has documented defaults', () => {
  const v = switchoverInput.parse(ok);
  expect(v).toMatchObject({
    schema: 'public',
    database: 'default',
    batchSize: 10000,
    dryRun: false,
    backup: 'table',
    mode: 'switchover',
    approval: { required: true, timeout: '24h', approvers: [], onTimeout: 'rollback' },
    cutover: { terminate: false, protectRoles: [] },
  });
  expect(v.cutover.cancelBlockersAfter).toBeUndefined();
});

test.each([
  [{}, 'tables: '],
  [{ tables: [] }, 'tables: must list at least one table'],
  [{ tables: [{ ...ok.tables[0], interval: 'fortnight' }] }, 'tables.0.interval'],
  [{ tables: [{ ...ok.tables[0], table: 'x; drop table y' }] }, 'tables.0.table: must be a plain identifier'],
  [{ ...ok, batchSize: 0 }, 'batchSize'],
  [{ ...ok, batchSize: '10' }, 'batchSize'],
  [{ tables: [ok.tables[0], ok.tables[0]] }, 'tables.1.table: table "revenues" is listed twice'],
  [{ ...ok, approval: { timeout: 'soon' } }, 'approval.timeout: must be a duration'],
  [{ ...ok, databse: 'x' }, 'databse'],
  [{ ...ok, cutover: { cancelBlockersAfter: '10m' } }, 'cutover.cancelBlockersAfter: must be at most "5m"'],
  [{ ...ok, cutover: { cancelBlockersAfter: 'soon' } }, 'cutover.cancelBlockersAfter: must be a duration'],
  [{ ...ok, cutover: { protectRoles: [''] } }, 'cutover.protectRoles.0'],
  [{ ...ok, cutover: { kill: true } }, 'cutover: Unrecognized key'],
])('%j is refused naming %s', (input, field) => {
  const r = switchoverInput.safeParse(input);
  expect(r.success).toBe(false);
  expect(describeIssues(r.error!)).toContain(field);
});
