export * from './driver/public.js'
export * from './protocol/binding-frames.js'
