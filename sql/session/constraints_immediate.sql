-- Checks this transaction's deferred constraints now (no parameters, no rows).
set constraints all immediate
