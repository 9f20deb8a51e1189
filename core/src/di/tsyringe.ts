// Imported, not required: the build bundles these two into dist (scripts/bundle-dist.mjs --inline), see requireCommonJs.
// tsyringe needs the Reflect metadata API before it loads, and so do the decorators of the classes it builds.
import 'reflect-metadata'
import tsyringe from 'tsyringe'

/** The one place core loads tsyringe from. */
export const { container, inject, injectable } = tsyringe
export type { DependencyContainer, InjectionToken } from 'tsyringe'
