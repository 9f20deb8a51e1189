/** Edit distance counting a swap of two neighbouring letters as one edit (optimal string alignment), case-insensitive. */
function distance(a: string, b: string): number {
  a = a.toLowerCase()
  b = b.toLowerCase()
  let before: number[] = []
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) current[j] = Math.min(current[j]!, before[j - 2]! + 1)
    }
    before = previous
    previous = current
  }
  return previous[b.length]!
}

/**
 * The candidate closest to `word`, if it is close enough to be a likely typo: at most a third of the
 * word's length apart (and at least 1 edit allowed), or equal when `-`/`_` and case are ignored.
 */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  const plain = (s: string) => s.toLowerCase().replace(/[-_]/g, '')
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of candidates) {
    if (plain(candidate) === plain(word)) return candidate
    const d = distance(word, candidate)
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return bestDistance <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined
}
