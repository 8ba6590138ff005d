// The SQL helpers every builder uses: identifiers through the driver's escapeIdentifier,
// literals through escapeLiteral. Imports only `pg`'s escaping, so every SQL module can import it.
import { escapeIdentifier as ident, escapeLiteral as literal } from 'pg';

export { ident, literal };

/** `"schema"."name"`. */
export function qname(schema: string, name: string): string {
  return `${ident(schema)}.${ident(name)}`;
}

/** A column list, each quoted, optionally qualified: `list(['a', 'b'], 'x.')` is `x."a", x."b"`. */
export function list(cols: string[], prefix = ''): string {
  return cols.map((c) => prefix + ident(c)).join(', ');
}
