// Pure builder of the lock budget's settings (activities/locks.ts): each statement of a locked
// transaction runs after them. Values through src/sql.ts literal.
import { literal } from './sql';

/**
 * lock_timeout `ms` and statement_timeout `ms` (`statementLimit`) or none, for the rest of the
 * transaction, followed by `text` when given (one round trip).
 */
export function budgetSql(ms: number, statementLimit: boolean, text?: string): string {
  const set = `SET LOCAL lock_timeout = ${literal(`${ms}ms`)}; ` + `SET LOCAL statement_timeout = ${literal(statementLimit ? `${ms}ms` : '0')}`;
  return text === undefined ? set : `${set}; ${text}`;
}
