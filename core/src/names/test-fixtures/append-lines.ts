/**
 * Another program editing the hosts file: appends lines to argv[2] one at a time, the way `echo "…" >> /etc/hosts`
 * does (open with O_APPEND, write, close). It prints `started` after its first line; then each line read on stdin
 * starts a burst of ten lines, at once, and `burst` is printed when it is written. When stdin closes, it prints the
 * number of lines it appended. Line i is `10.99.<i / 250>.<i % 250 + 1><TAB>w<i>.appended.test`.
 *
 * Paced by the test, not by a timer: a burst lands while a rewrite is under way (the race under test), and no more
 * than one burst per rewrite, however slow the machine, so that the rewrite's rounds always get a quiet one.
 */
import { appendFileSync } from 'node:fs'
import { createInterface } from 'node:readline'

const path = process.argv[2]
if (!path) throw new Error('usage: append-lines <file>')
let count = 0
const append = (): void => {
  appendFileSync(path, `10.99.${Math.floor(count / 250)}.${(count % 250) + 1}\tw${count}.appended.test\n`)
  count++
}
append()
process.stdout.write('started\n')
const input = createInterface({ input: process.stdin })
input.on('line', () => {
  for (let n = 0; n < 10; n++) append()
  process.stdout.write('burst\n')
})
input.on('close', () => process.stdout.write(`${count}\n`))
