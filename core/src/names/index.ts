export { HostsFileNameResolver, HOSTS_BACKUP_FILE, HOSTS_INFLIGHT_FILE, type HostsFileNameResolverOptions } from './hosts-file-name-resolver.js'
export { updateHostsText, parseHostsBlock, HOSTS_BLOCK_BEGIN, HOSTS_BLOCK_END, type HostsUpdate, type HostsBlockInfo } from './hosts-block.js'
