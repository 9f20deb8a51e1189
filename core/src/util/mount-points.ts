import { readFileSync } from 'node:fs'

/** The mount points this process sees (`/proc/self/mountinfo`, field 5, octal escapes undone); none where it cannot read them. */
export function mountPoints(): Set<string> {
  try {
    return new Set(
      readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .map((line) => line.split(' ')[4])
        .filter((p): p is string => p !== undefined)
        .map((p) => p.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))),
    )
  } catch {
    return new Set()
  }
}
