/** State: the `StateStore` adapters (in-memory, Azure Table Storage), the TTL sweep, and Table dead letters. */
export { MemoryStateStore, createMemoryStateStore, MEMORY_TRANSACTION_LIMIT, type MemoryStateStoreOptions, type MemoryStateStoreStats } from './memoryStore';
export { TableStateStore, createTableStateStore, StateWriteRefusedError, type TableStateStoreOptions, type TableStateStats, type RetryPolicy } from './tableStore';
export { sweepExpiredState, type SweepOptions, type SweepResult } from './sweep';
export { TableDeadLetterSink, createTableDeadLetterSink, type TableDeadLetterSinkOptions, type StoredDeadLetter } from './deadLetterTable';
