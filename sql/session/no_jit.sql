-- no JIT compilation until the transaction ends (compiling costs more than it saves on verification's scans); no parameters
set local jit = off
