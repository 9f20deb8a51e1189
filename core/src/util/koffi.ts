import { requireCommonJs } from './commonjs.js'

/** koffi by its CommonJS entry ({@link requireCommonJs}): the one every FFI module of core uses, as its ES entry is a second copy of the same code. */
export const koffi = requireCommonJs('koffi') as typeof import('koffi')
