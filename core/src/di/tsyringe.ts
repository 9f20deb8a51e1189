import { requireCommonJs } from '../util/commonjs.js'

// tsyringe needs the Reflect metadata API before it loads, and so do the decorators of the classes it builds
requireCommonJs('reflect-metadata')

/** tsyringe by `require` ({@link requireCommonJs}): the one place core loads it from. */
export const { container, inject, injectable } = requireCommonJs('tsyringe') as typeof import('tsyringe')
export type { DependencyContainer, InjectionToken } from 'tsyringe'
