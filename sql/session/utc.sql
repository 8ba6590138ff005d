-- Settings of this transaction: timestamps and dates rendered in UTC (no parameters, no rows).
set local timezone = 'UTC'
