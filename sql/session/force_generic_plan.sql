-- Until the transaction ends, a prepared statement gets its generic plan (the one for any parameter value); no parameters.
set local plan_cache_mode = force_generic_plan
