/**
 * The only file of the hosts-file resolver that touches koffi: Linux file leases (fcntl F_SETLEASE),
 * used to keep other programs' writes to the hosts file from being lost, and the lock two ngrokd
 * processes (named instances) take before either rewrites it (flock). Imported lazily, on Linux only.
 *
 * - A read lease is granted only while no descriptor of the file is open for writing (fs/locks.c,
 *   check_conflicting_open): {@link hasOtherWriters} takes one and gives it back at once.
 * - A write lease is granted only while no other descriptor of the file is open at all; while it is
 *   held, another process's open() of the file waits until it is released (or for at most
 *   /proc/sys/fs/lease-break-time seconds). The kernel tells the holder with a signal, set with
 *   F_SETSIG to SIGURG, whose default action is to be ignored: the holder needs no handler.
 */
import { constants } from 'node:os'
import { koffi } from '../../util/koffi.js'

const F_SETSIG = 10 // <asm-generic/fcntl.h>
const F_SETLEASE = 1024 // <linux/fcntl.h>: F_LINUX_SPECIFIC_BASE (1024) + 0
const F_RDLCK = 0 // <asm-generic/fcntl.h>
const F_WRLCK = 1 // <asm-generic/fcntl.h>
const F_UNLCK = 2 // <asm-generic/fcntl.h>
const EAGAIN = 11 // <asm-generic/errno-base.h>
const SIGURG = constants.signals.SIGURG // 23 on x86 and arm (<asm-generic/signal.h>); Node reads it from <signal.h>
const LOCK_EX = 2 // <sys/file.h>
const LOCK_NB = 4 // <sys/file.h>
const LOCK_UN = 8 // <sys/file.h>

/** For the test that checks the numbers above against the C headers. */
export const LEASE_CONSTANTS = { F_SETSIG, F_SETLEASE, F_RDLCK, F_WRLCK, F_UNLCK, EAGAIN, SIGURG, LOCK_EX, LOCK_NB, LOCK_UN }

function loadLibc(): ReturnType<typeof koffi.load> {
  try {
    return koffi.load('libc.so.6') // glibc
  } catch {
    return koffi.load(null) // musl and others: the symbols node itself links against
  }
}

const libc = loadLibc()
// fcntl is variadic: the third argument is passed with its type at each call
const fcntl = libc.func('int fcntl(int fd, int cmd, ...)') as (fd: number, cmd: number, ...args: unknown[]) => number
const flock = libc.func('int flock(int fd, int operation)') as (fd: number, operation: number) => number

/**
 * `true` when some descriptor other than `fd` has the file open for writing, `false` when none has,
 * `undefined` when the kernel does not say (leases disabled or not permitted, not a regular file).
 * `fd` must be open read-only. The lease is given back at once (and its signal would be SIGURG).
 */
export function hasOtherWriters(fd: number): boolean | undefined {
  if (fcntl(fd, F_SETSIG, 'int', SIGURG) !== 0) return undefined
  if (fcntl(fd, F_SETLEASE, 'int', F_RDLCK) === 0) {
    fcntl(fd, F_SETLEASE, 'int', F_UNLCK)
    return false
  }
  return koffi.errno() === EAGAIN ? true : undefined
}

/**
 * Takes a write lease on the file behind `fd`: `true` when held, `false` when another descriptor of
 * the file is open (try again later), `undefined` when leases cannot be had here. Release it with
 * {@link releaseLease}; closing `fd` releases it too.
 */
export function takeWriteLease(fd: number): boolean | undefined {
  if (fcntl(fd, F_SETSIG, 'int', SIGURG) !== 0) return undefined
  if (fcntl(fd, F_SETLEASE, 'int', F_WRLCK) === 0) return true
  return koffi.errno() === EAGAIN ? false : undefined
}

export function releaseLease(fd: number): void {
  fcntl(fd, F_SETLEASE, 'int', F_UNLCK)
}

/**
 * Takes the lock that ngrokd processes writing the same hosts file share (flock, advisory: other programs
 * neither take nor see it): `true` when held, `false` when another process holds it (try again later),
 * `undefined` when it cannot be had here. The kernel drops it when the holder closes `fd` or dies.
 */
export function lockWriters(fd: number): boolean | undefined {
  if (flock(fd, LOCK_EX | LOCK_NB) === 0) return true
  return koffi.errno() === EAGAIN ? false : undefined
}

export function unlockWriters(fd: number): void {
  flock(fd, LOCK_UN)
}
