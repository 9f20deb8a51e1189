/**
 * The Windows calls the driver makes, in the shape the pure code needs. The real ones go through koffi
 * (`ffi/win32.ts`); tests pass `FakeWindows` (`testing/fake-windows.ts`), which checks the exact bytes.
 * Buffers are the structs themselves (see `abi/structs.ts`); results are the functions' own return codes.
 */

/** iphlpapi (+ the privilege check). Status values are Win32 error codes (NETIO_STATUS). */
export interface WindowsNetApi {
  /** InitializeUnicastIpAddressEntry: fills `row` (80 bytes) with the documented defaults. */
  initializeUnicastIpAddressEntry(row: Buffer): void
  createUnicastIpAddressEntry(row: Buffer): number
  deleteUnicastIpAddressEntry(row: Buffer): number
  /** GetUnicastIpAddressTable + FreeMibTable: the rows copied out (whole MIB_UNICASTIPADDRESS_ROWs). */
  getUnicastIpAddressTable(family: number): { status: number; rows: Buffer }
  /** The process token is a member of BUILTIN\Administrators (elevated, under UAC). */
  isAdministrator(): boolean
  lastError(): number
}

/** A handle; 0n is NULL. */
export type Handle = bigint

/** wintun.dll, loaded from an absolute path. Calls that return NULL/0 carry GetLastError in `error`. */
export interface WintunApi {
  readonly path: string
  createAdapter(name: string, tunnelType: string, guid: Buffer | null): { handle: Handle; error: number }
  openAdapter(name: string): { handle: Handle; error: number }
  /** Removes the adapter when `adapter` came from createAdapter (wintun.h). */
  closeAdapter(adapter: Handle): void
  deleteDriver(): boolean
  /** WintunGetAdapterLUID: the 8 bytes of the NET_LUID. */
  getAdapterLuid(adapter: Handle): Buffer
  runningDriverVersion(): { version: number; error: number }
  startSession(adapter: Handle, capacity: number): { handle: Handle; error: number }
  endSession(session: Handle): void
  readWaitEvent(session: Handle): Handle
  /** WintunReceivePacket, then WintunReleaseReceivePacket at once: the packet is dropped. */
  receivePacket(session: Handle): { size: number; error: number }
  /** WaitForSingleObject(event, INFINITE) on a worker thread (koffi `.async`): never blocks the event loop. */
  waitForEvent(event: Handle): Promise<'signalled' | 'failed'>
  setEvent(event: Handle): void
}
