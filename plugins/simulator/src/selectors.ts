/**
 * Operator `binding.endpoint_selectors`: ngrok evaluates CEL expressions over `endpoint.*` server
 * side; an endpoint is bound when any selector is true. The simulator understands the subset that
 * real selectors use:
 *
 *   true | false | ( e ) | !e | e && e | e || e
 *   endpoint.<field> == <literal> | endpoint.<field> != <literal>
 *   endpoint.<field>.startsWith('…') | .endsWith('…') | .contains('…')
 *
 * with fields id, url, host, port, proto, hostport, type, metadata, description.
 */

export type SelectorSubject = Record<string, string | number>
export type Selector = (endpoint: SelectorSubject) => boolean

export class SelectorError extends Error {
  override name = 'SelectorError'
}

export const SELECTOR_FIELDS = ['id', 'url', 'host', 'port', 'proto', 'hostport', 'type', 'metadata', 'description'] as const

type Token = { kind: 'op'; value: string } | { kind: 'ident'; value: string } | { kind: 'lit'; value: string | number | boolean }

function tokenize(src: string): Token[] {
  const out: Token[] = []
  let i = 0
  while (i < src.length) {
    const c = src[i]!
    if (/\s/.test(c)) {
      i++
      continue
    }
    const two = src.slice(i, i + 2)
    if (two === '&&' || two === '||' || two === '==' || two === '!=') {
      out.push({ kind: 'op', value: two })
      i += 2
    } else if ('()!.'.includes(c)) {
      out.push({ kind: 'op', value: c })
      i++
    } else if (c === '"' || c === "'") {
      let j = i + 1
      let s = ''
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\\' && j + 1 < src.length) j++
        s += src[j]
        j++
      }
      if (j >= src.length) throw new SelectorError(`unterminated string in selector ${JSON.stringify(src)}`)
      out.push({ kind: 'lit', value: s })
      i = j + 1
    } else if (/[0-9]/.test(c)) {
      const m = /^[0-9]+/.exec(src.slice(i))!
      out.push({ kind: 'lit', value: Number(m[0]) })
      i += m[0].length
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!
      if (m[0] === 'true' || m[0] === 'false') out.push({ kind: 'lit', value: m[0] === 'true' })
      else out.push({ kind: 'ident', value: m[0] })
      i += m[0].length
    } else {
      throw new SelectorError(`unexpected ${JSON.stringify(c)} in selector ${JSON.stringify(src)}`)
    }
  }
  return out
}

/** Compiles one selector; throws {@link SelectorError} for anything outside the subset. */
export function compileSelector(src: string): Selector {
  const tokens = tokenize(src)
  let pos = 0
  const fail = (why: string): never => {
    throw new SelectorError(`selector ${JSON.stringify(src)}: ${why}`)
  }
  const peek = (): Token | undefined => tokens[pos]
  const isOp = (v: string): boolean => {
    const t = peek()
    return t?.kind === 'op' && t.value === v
  }
  const expectOp = (v: string): void => {
    if (!isOp(v)) fail(`expected ${v}`)
    pos++
  }

  const orExpr = (): Selector => {
    let left = andExpr()
    while (isOp('||')) {
      pos++
      const l = left
      const r = andExpr()
      left = (e) => l(e) || r(e)
    }
    return left
  }
  const andExpr = (): Selector => {
    let left = unary()
    while (isOp('&&')) {
      pos++
      const l = left
      const r = unary()
      left = (e) => l(e) && r(e)
    }
    return left
  }
  const unary = (): Selector => {
    if (isOp('!')) {
      pos++
      const inner = unary()
      return (e) => !inner(e)
    }
    return primary()
  }
  const primary = (): Selector => {
    const t = peek()
    if (!t) return fail('unexpected end')
    if (t.kind === 'op' && t.value === '(') {
      pos++
      const inner = orExpr()
      expectOp(')')
      return inner
    }
    if (t.kind === 'lit' && typeof t.value === 'boolean') {
      pos++
      const v = t.value
      return () => v
    }
    if (t.kind === 'ident' && t.value === 'endpoint') {
      pos++
      expectOp('.')
      const f = peek()
      if (f?.kind !== 'ident' || !(SELECTOR_FIELDS as readonly string[]).includes(f.value)) return fail('unknown endpoint field')
      const field = f.value
      pos++
      if (isOp('==') || isOp('!=')) {
        const negate = (peek() as Token).value === '!='
        pos++
        const lit = peek()
        if (lit?.kind !== 'lit') return fail('expected a literal')
        pos++
        const want = lit.value
        return (e) => (String(e[field]) === String(want)) !== negate
      }
      if (isOp('.')) {
        pos++
        const m = peek()
        if (m?.kind !== 'ident' || !['startsWith', 'endsWith', 'contains'].includes(m.value)) return fail('unknown method')
        pos++
        expectOp('(')
        const arg = peek()
        if (arg?.kind !== 'lit' || typeof arg.value !== 'string') return fail('expected a string argument')
        pos++
        expectOp(')')
        const a = arg.value
        const method = m.value
        return (e) => {
          const v = String(e[field] ?? '')
          return method === 'startsWith' ? v.startsWith(a) : method === 'endsWith' ? v.endsWith(a) : v.includes(a)
        }
      }
      return fail('expected ==, != or a method call')
    }
    return fail('expected true, false, ( or endpoint.<field>')
  }

  const result = orExpr()
  if (pos !== tokens.length) fail('unexpected trailing input')
  return result
}

/** Compiles a selector list; the result is true when any selector is (an empty list binds nothing). */
export function compileSelectors(list: string[]): Selector {
  const compiled = list.map(compileSelector)
  return (e) => compiled.some((s) => s(e))
}
