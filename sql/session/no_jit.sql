-- Settings of this transaction: no JIT compilation (no parameters, no rows).
set local jit = off
