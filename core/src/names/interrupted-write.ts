/**
 * What an in-place rewrite of the hosts file that did not finish left behind, judged from the file
 * and the two contents recorded before the write began: the old one (the backup) and the new one.
 *
 * - `old`: the file holds the old content (the write never began, or was undone).
 * - `new`: the file holds the new content (the write completed).
 * - `torn`: the file is **damaged**: it is neither of them, its length is one the write passes
 *   through (from the shorter of the two to the longer), and each of its bytes is the old content's
 *   byte at that offset, the new content's, or zero (a block a crash left unwritten). The old
 *   content is taken with the newline padding a growing write puts after it first. Only then is the
 *   backup restored, and restoring removes nothing of the user's: the old content holds every line
 *   they had, and a torn file holds no byte that neither content has at that offset.
 * - `changed`: anything else. Someone changed the file after the write (an admin's edit, a fix by
 *   hand): it is kept as it is.
 */
export type InterruptedWriteState = 'old' | 'new' | 'torn' | 'changed'

/** The byte a growing in-place write puts after the old content before anything else (a newline). */
export const RESERVE_BYTE = 0x0a

export function judgeInterruptedWrite(file: Uint8Array, old: Uint8Array, next: Uint8Array): InterruptedWriteState {
  if (Buffer.compare(file, old) === 0) return 'old'
  if (Buffer.compare(file, next) === 0) return 'new'
  if (file.length < Math.min(old.length, next.length) || file.length > Math.max(old.length, next.length)) return 'changed'
  for (let i = 0; i < file.length; i++) {
    const b = file[i]!
    const before = i < old.length ? old[i] : RESERVE_BYTE
    if (b !== before && b !== next[i] && b !== 0) return 'changed'
  }
  return 'torn'
}

/**
 * A torn file (see above) to which whole lines were appended afterwards (`echo … >> /etc/hosts` before ngrokd looked
 * again): the appended bytes, else undefined. The torn part is the longest run from the start whose every byte the
 * write could have left there, ending at a line end (or in a zero block) at a length the write passes through; what
 * follows must be whole lines. Restoring the old content with those lines after it loses nothing of the user's and keeps nothing torn.
 */
export function tornThenAppended(file: Uint8Array, old: Uint8Array, next: Uint8Array): Uint8Array | undefined {
  const longest = Math.max(old.length, next.length)
  let written = 0 // bytes from the start the write could have left: old's, next's or zero at each offset
  while (written < Math.min(file.length, longest)) {
    const b = file[written]!
    const before = written < old.length ? old[written] : RESERVE_BYTE
    if (b !== before && b !== next[written] && b !== 0) break
    written++
  }
  for (let end = written; end >= Math.min(old.length, next.length) && end > 0; end--) {
    // the torn part ends at a line end, or in a block the crash left zero (`>>` appends right after it)
    if ((file[end - 1] !== 0x0a && file[end - 1] !== 0) || end === file.length) continue
    if (judgeInterruptedWrite(file.subarray(0, end), old, next) !== 'torn') return undefined
    const appended = file.subarray(end)
    return appended[appended.length - 1] === 0x0a && !appended.includes(0) ? appended : undefined
  }
  return undefined
}
