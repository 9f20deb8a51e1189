export { MemoryAllocator, type MemoryAllocatorOptions, type AllocatorState } from './memory-allocator.js'
export { PersistentAllocator, type PersistentAllocatorOptions } from './persistent-allocator.js'
