import { cpus, release, totalmem } from 'node:os'

export interface MachineInfo {
  cpu: string
  cores: number
  memoryGiB: number
  node: string
  kernel: string
  platform: string
}

/** What the figures were measured on: they only compare with figures from the same kind of machine. */
export function machineInfo(): MachineInfo {
  const list = cpus()
  return {
    cpu: list[0]?.model.trim() || 'unknown',
    cores: list.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel: release(),
    platform: `${process.platform}-${process.arch}`,
  }
}
