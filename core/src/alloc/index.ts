export { MemoryAllocator, type MemoryAllocatorOptions, type AllocatorState } from './memory-allocator.js'
export { PersistentAllocator, ALLOCATIONS_FILE, type PersistentAllocatorOptions } from './persistent-allocator.js'
