/**
 * The TLS session to offer on the next connection to the binding ingress, for one key at a time.
 *
 * - The key names everything a session may be resumed for: the ingress `host:port` (Node does not run
 *   `checkServerIdentity` again on a resumed session, so a session must never be offered to another
 *   host) and the client-credential fingerprint (a session carries the client certificate it was made
 *   with, so one from before a rotation must not be offered after it).
 * - Asking for another key drops the session held for the previous one: a rotation or an endpoint
 *   change forgets the old session at once.
 * - A session arriving for a key that is no longer current (a late TLS 1.3 ticket on an old
 *   connection) is ignored.
 */
export class TlsSessionCache {
  private currentKey?: string
  private session?: Buffer

  /** The session to offer for `key`, which becomes the current key. */
  get(key: string): Buffer | undefined {
    if (key !== this.currentKey) {
      this.currentKey = key
      this.session = undefined
    }
    return this.session
  }

  /** Keeps `session` (a `tls` `session` event's payload) if `key` is the current key. */
  set(key: string, session: Buffer): void {
    if (key === this.currentKey) this.session = session
  }

  /**
   * Forgets the session for `key` if it is still `offered` (the server refused it, or a connection
   * that offered it failed); a newer one that arrived meanwhile is kept.
   */
  drop(key: string, offered: Buffer): void {
    if (key === this.currentKey && this.session === offered) this.session = undefined
  }

  clear(): void {
    this.currentKey = undefined
    this.session = undefined
  }

  /** Whether a session is held for the current key. */
  get held(): boolean {
    return this.session !== undefined
  }
}
