-- a refresh while approval waits stays within its activity's 5 minutes
set local statement_timeout = '4min'
