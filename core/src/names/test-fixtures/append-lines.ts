/**
 * Another program editing the hosts file: appends one line at a time to argv[2], the way
 * `echo "…" >> /etc/hosts` does (open with O_APPEND, write, close), in bursts of ten lines with a
 * timer turn between bursts (so the file stays a few hundred kilobytes at most), until its stdin closes. Prints `started` after the first line and, when it stops, the number of lines it appended.
 * Line i is `10.99.<i / 250>.<i % 250 + 1><TAB>w<i>.appended.test`.
 */
import { appendFileSync } from 'node:fs'

const path = process.argv[2]
if (!path) throw new Error('usage: append-lines <file>')
let stopped = false
process.stdin.on('data', () => {})
process.stdin.on('end', () => {
  stopped = true
})
let count = 0
const burst = (): void => {
  for (let n = 0; n < 10 && !stopped; n++) {
    appendFileSync(path, `10.99.${Math.floor(count / 250)}.${(count % 250) + 1}\tw${count}.appended.test\n`)
    if (count++ === 0) process.stdout.write('started\n')
  }
  if (stopped) process.stdout.write(`${count}\n`)
  else setTimeout(burst, 1)
}
burst()
