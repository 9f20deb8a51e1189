import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { peerBinaryProblem } from './go-peer.js'

export const FIGURES = ['addresses', 'endpoints', 'forwarding'] as const
export type FigureName = (typeof FIGURES)[number]

export interface BenchOptions {
  /** Runs per figure; each figure is the median of these. */
  runs: number
  /** Seconds-long smoke: small sizes, one run, no wrk install, BENCHMARKS.md untouched. */
  quick: boolean
  /** JSON results file. */
  out: string | undefined
  /** Rewrite the results block of BENCHMARKS.md. */
  markdown: boolean
  /** apt-get install wrk when it is missing (root only). */
  installWrk: boolean
  only: FigureName[]
  /** The built Go daemon for a row beside ngrokd's in the forwarding figure (absolute path), or none. */
  peer: string | undefined
  /** `ingress.predial` for ngrokd's daemons in the forwarding figure; 0 = the default (none). */
  predial: number
  /** Sizes of each figure. */
  scale: BenchScale
}

export interface BenchScale {
  /** Figure 1: addresses added then removed in one batch. */
  addresses: number
  /** Figure 2: bound endpoints (100 per API page). */
  endpoints: number
  /** Figure 2: hostnames checked with a real request each. */
  sample: number
  /** Figure 3: bytes of the one-connection download. */
  downloadBytes: number
  /** Figure 3: bytes of the one-connection upload. */
  uploadBytes: number
  /** Figure 3: bytes of each parallel-download run, split over its 8 or 64 connections. */
  parallelBytes: number
  /** Figure 3: idle open connections for the RSS figure. */
  idleConnections: number
  /** Figure 3: fresh connections per path per run for the latency percentiles. */
  latencyRequests: number
  /** Figure 3: seconds of each wrk run. */
  wrkSeconds: number
}

const MiB = 1024 * 1024

const GiB = 1024 * MiB

/** The sizes: a 1 GiB download, a 256 MiB upload, 1,000 idle connections. */
export const FULL_SCALE: BenchScale = {
  addresses: 10_000,
  endpoints: 10_000,
  sample: 20,
  downloadBytes: GiB,
  uploadBytes: 256 * MiB,
  parallelBytes: 256 * MiB,
  idleConnections: 1000,
  latencyRequests: 200,
  wrkSeconds: 5,
}
/** `--reduced`: the full run with a quarter of the bytes and shorter wrk runs, for a slow or busy machine. */
export const REDUCED_SCALE: BenchScale = { ...FULL_SCALE, downloadBytes: 256 * MiB, uploadBytes: 64 * MiB, parallelBytes: 64 * MiB, wrkSeconds: 3 }
export const QUICK_SCALE: BenchScale = {
  addresses: 500,
  endpoints: 300,
  sample: 5,
  downloadBytes: 8 * MiB,
  uploadBytes: 4 * MiB,
  parallelBytes: 8 * MiB,
  idleConnections: 50,
  latencyRequests: 20,
  wrkSeconds: 1,
}

export const USAGE = `usage: npm run bench -- [options]

  --runs N        runs per figure, each figure is the median (default 3; 1 with --quick)
  --quick         seconds-long smoke with small sizes; does not install wrk or touch BENCHMARKS.md
  --reduced       a quarter of the bytes (256 MiB download, 64 MiB upload) and 3 s wrk runs
  --only LIST     comma-separated figures: ${FIGURES.join(', ')} (default: all)
  --out FILE      JSON results (default bench-results/latest.json; bench-results/quick.json with --quick)
  --no-markdown   do not rewrite the results block of BENCHMARKS.md
  --no-install    do not apt-get install wrk when it is missing
  --peer PATH     also measure the original Go daemon built at PATH (test/scripts/build-go-peer.sh), in
                  the forwarding figure, beside ngrokd with ratios
  --predial N     ngrokd's daemons in the forwarding figure dial N ingress connections ahead
                  (ingress.predial; default 0, as ngrokd's own default); not with BENCHMARKS.md's block
  --help          this text
`

export class UsageError extends Error {}

export function parseBenchArgs(argv: string[]): BenchOptions | 'help' {
  let values
  try {
    ;({ values } = parseArgs({
      args: argv,
      options: {
        runs: { type: 'string' },
        quick: { type: 'boolean', default: false },
        reduced: { type: 'boolean', default: false },
        only: { type: 'string' },
        out: { type: 'string' },
        'no-markdown': { type: 'boolean', default: false },
        'no-install': { type: 'boolean', default: false },
        peer: { type: 'string' },
        predial: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    }))
  } catch (e) {
    throw new UsageError((e as Error).message)
  }
  if (values.help) return 'help'
  const quick = values.quick === true
  const runs = values.runs === undefined ? (quick ? 1 : 3) : Number(values.runs)
  if (!Number.isInteger(runs) || runs < 1 || runs > 100) throw new UsageError(`--runs must be an integer 1..100, not ${values.runs}`)
  const only = values.only === undefined ? [...FIGURES] : values.only.split(',').map((s) => s.trim())
  for (const f of only) if (!(FIGURES as readonly string[]).includes(f)) throw new UsageError(`--only: unknown figure ${JSON.stringify(f)} (${FIGURES.join(', ')})`)
  const predial = values.predial === undefined ? 0 : Number(values.predial)
  if (!Number.isInteger(predial) || predial < 0 || predial > 64) throw new UsageError(`--predial must be an integer 0..64 (ingress.predial), not ${values.predial}`)
  const peer = values.peer === undefined ? undefined : resolve(values.peer)
  const peerProblem = peer === undefined ? undefined : peerBinaryProblem(peer)
  if (peerProblem) throw new UsageError(`--peer: ${peerProblem}`)
  return {
    runs,
    quick,
    out: values.out,
    // the results block documents ngrokd's defaults: a run with another ingress.predial does not replace it
    markdown: !quick && values['no-markdown'] !== true && predial === 0,
    installWrk: !quick && values['no-install'] !== true,
    only: only as FigureName[],
    peer,
    predial,
    scale: quick ? QUICK_SCALE : values.reduced === true ? REDUCED_SCALE : FULL_SCALE,
  }
}
