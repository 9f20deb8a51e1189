export {
  HostsFileNameResolver,
  HOSTS_BACKUP_FILE,
  HOSTS_NEXT_FILE,
  HOSTS_INFLIGHT_FILE,
  HOSTS_FROZEN_FILE,
  HOSTS_UNMERGED_FILE,
  type HostsFileNameResolverOptions,
} from './hosts-file-name-resolver.js'
export { updateHostsBytes, updateHostsText, parseHostsBlock, HOSTS_BLOCK_BEGIN, HOSTS_BLOCK_END, type HostsUpdate, type HostsBytesUpdate, type HostsBlockInfo, type HostsBlockOptions } from './hosts-block.js'
export { judgeInterruptedWrite, type InterruptedWriteState } from './interrupted-write.js'
export { createHostsFileNameResolver, POSIX_HOSTS_FILE, type PlatformHostsFileOptions } from './platform-hosts-file.js'
export { MacosHostsFileNameResolver, type MacosHostsFileNameResolverOptions } from './macos-hosts.js'
