-- back to the session's own role after SET LOCAL ROLE (building a materialized view as its owner)
reset role
