// How a database error is classified, by SQLSTATE: transient ones stay retryable (the activity's
// retry policy backs off), permanent ones become typed non-retryable failures that say what to do,
// and anything else is left to the bounded retries of the activity's policy.
import { ApplicationFailure } from '@temporalio/common';
import { DatabaseError } from 'pg';
import { classify, fail, isTransient } from '../src/errors';

function pgError(code: string, message = `error ${code}`): DatabaseError {
  const e = new DatabaseError(message, message.length, 'error');
  e.code = code;
  return e;
}

const where = { stage: 'copy', table: 'revenues' };

const TRANSIENT: [string, string][] = [
  ['40001', 'serialization_failure'],
  ['40P01', 'deadlock_detected'],
  ['55P03', 'lock_not_available'],
  ['57P01', 'admin_shutdown (pg_terminate_backend)'],
  ['57P02', 'crash_shutdown'],
  ['57P03', 'cannot_connect_now (server starting up)'],
  ['53300', 'too_many_connections'],
  ['08000', 'connection_exception'],
  ['08001', 'sqlclient_unable_to_establish_sqlconnection'],
  ['08003', 'connection_does_not_exist'],
  ['08004', 'sqlserver_rejected_establishment_of_sqlconnection'],
  ['08006', 'connection_failure'],
];

test.each(TRANSIENT)('SQLSTATE %s (%s) is transient: retryable, with backoff', (code) => {
  const f = classify(pgError(code, 'boom'), where) as ApplicationFailure;
  expect(isTransient(pgError(code))).toBe(true);
  expect(f).toBeInstanceOf(ApplicationFailure);
  expect(f.type).toBe('Transient');
  expect(f.nonRetryable).toBe(false);
  expect(f.message).toBe(`copy of revenues: boom (SQLSTATE ${code}); retrying with backoff`);
});

test.each(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT'])('node socket error %s is transient', (code) => {
  const f = classify(Object.assign(new Error(`connect ${code}`), { code }), where) as ApplicationFailure;
  expect(f).toMatchObject({ type: 'Transient', nonRetryable: false });
});

test.each(['Connection terminated unexpectedly', 'terminating connection due to administrator command'])(
  'a lost connection without a code is transient: %s',
  (message) => {
    expect(isTransient(new Error(message))).toBe(true);
    expect(classify(new Error(message), where)).toMatchObject({ type: 'Transient', nonRetryable: false });
  },
);

const PERMANENT: [string, string, string, RegExp][] = [
  ['42501', 'insufficient_privilege', 'PermissionDenied', /Grant the worker's role the privilege, then start again\.$/],
  ['28P01', 'invalid_password', 'PermissionDenied', /Check the worker's connection string for this database target/],
  ['28000', 'invalid_authorization_specification', 'PermissionDenied', /Check the worker's connection string/],
  ['3D000', 'invalid_catalog_name (database does not exist)', 'UnknownDatabase', /Check the worker's connection string/],
  ['42P01', 'undefined_table', 'StateConflict', /\(SQLSTATE 42P01\)\. The database is unchanged by this failed statement\.$/],
  ['42703', 'undefined_column', 'StateConflict', /SQLSTATE 42703/],
  ['42601', 'syntax_error', 'StateConflict', /SQLSTATE 42601/],
  ['23505', 'unique_violation', 'StateConflict', /SQLSTATE 23505/],
  ['23514', 'check_violation (no partition for a row)', 'StateConflict', /SQLSTATE 23514/],
  ['22P02', 'invalid_text_representation', 'StateConflict', /SQLSTATE 22P02/],
  ['0A000', 'feature_not_supported', 'StateConflict', /SQLSTATE 0A000/],
  ['2BP01', 'dependent_objects_still_exist', 'StateConflict', /SQLSTATE 2BP01/],
];

test("a refusal keeps PostgreSQL's DETAIL and HINT (e.g. the view a DROP refuses over)", () => {
  const err = Object.assign(pgError('2BP01', 'cannot drop table t_partitioned because other objects depend on it'), {
    detail: 'view v depends on table t_partitioned',
    hint: 'Use DROP ... CASCADE to drop the dependent objects too.',
  });
  const f = classify(err, where) as ApplicationFailure;
  expect(f).toMatchObject({ type: 'StateConflict', nonRetryable: true });
  expect(f.message).toBe(
    'copy of revenues: cannot drop table t_partitioned because other objects depend on it (DETAIL: view v depends on table t_partitioned ' +
      'HINT: Use DROP ... CASCADE to drop the dependent objects too.) (SQLSTATE 2BP01). The database is unchanged by this failed statement.',
  );
});

test.each(PERMANENT)('SQLSTATE %s (%s) fails at once as %s', (code, _name, type, message) => {
  expect(isTransient(pgError(code))).toBe(false);
  const f = classify(pgError(code, 'refused'), where) as ApplicationFailure;
  expect(f).toBeInstanceOf(ApplicationFailure);
  expect(f.type).toBe(type);
  expect(f.nonRetryable).toBe(true);
  expect(f.message).toMatch(/^copy of revenues: refused/);
  expect(f.message).toMatch(message);
  expect(f.details).toEqual([{ stage: 'copy', table: 'revenues', sqlstate: code }]);
});

test.each([
  ['57014', 'query_canceled'],
  ['53100', 'disk_full'],
  ['53200', 'out_of_memory'],
  ['XX000', 'internal_error'],
])('SQLSTATE %s (%s) is left as it is: retried, a bounded number of times, by the activity policy', (code) => {
  const err = pgError(code);
  expect(isTransient(err)).toBe(false);
  expect(classify(err, where)).toBe(err);
});

test('our own typed failures pass through unchanged', () => {
  const f = fail('UnsupportedSchema', 'no primary key');
  expect(classify(f, where)).toBe(f);
  expect(f.nonRetryable).toBe(true);
});
