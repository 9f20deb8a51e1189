/**
 * Joins `parts` into one flat string. V8 keeps a string made with `+` or a template literal as a tree of its
 * parts (a 32-byte ConsString per join) for as long as the string lives, even after flattening it for a map
 * lookup; a key kept for each of 10,000 endpoints is made with this instead (`Array.prototype.join` writes
 * one sequential string).
 */
export function flatJoin(...parts: Array<string | number>): string {
  return parts.join('')
}
