// Every workflow type: the worker, the replay tests and outside tools load workflow code from here.
export { switchover } from './switchover';
export { rollback } from './rollback';
export { cleanup } from './cleanup';
export { maintainPartitions } from './maintenance';
export { rehearsal } from './rehearsal/index';
export { fleet } from './fleet';
export { splitHistory } from './split-history';
