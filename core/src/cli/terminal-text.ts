/** Characters that drive a terminal or fake a line: C0 controls but tab, DEL, C1 controls, line and paragraph separators, bidi overrides. */
const UNSAFE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

/**
 * Text from the API (an endpoint's URL, id, a reason quoting them) as a terminal may show it: each unsafe
 * character written as `\u001b`, so that a name can neither send escape sequences (retitle the window,
 * clear the screen) nor break a line to fake rows. Rule: the CLI passes what it did not write itself
 * through this before printing it for people (`--json` output is JSON-escaped already).
 */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/**
 * On a terminal, says on stderr what a command waits for (`asking the ngrok API at … (up to 10 s)`), as one line that
 * the next line printed replaces; elsewhere (a pipe, a log) nothing. The returned `done()` clears the line.
 */
export function waitingLine(what: string, stream: NodeJS.WriteStream = process.stderr): () => void {
  if (!stream.isTTY) return () => {}
  stream.write(`… ${terminalSafe(what)}`)
  let cleared = false
  return () => {
    if (cleared) return
    cleared = true
    stream.write('\r\x1b[K') // carriage return, then ECMA-48 EL (erase to the end of the line)
  }
}
