-- timezone = UTC until the transaction ends (dates and bounds read in UTC); no parameters
set local timezone = 'UTC'
