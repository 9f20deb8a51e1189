/** One interface-driver setup the main scenarios run with. */
export interface NetDriverCase {
  /** `net.driver` */
  driver: 'loopback-alias' | 'linux-netlink'
  /** `net.subnet` */
  subnet: string
  /** `net.interface_name` (unset: the driver's default); per file, so leftovers of one never meet another. */
  interfaceName?: string
  /** The driver puts addresses on a real link that `ip -j addr show dev <if>` lists. */
  kernelLink: boolean
}

/**
 * The driver matrix: linux-netlink on the documented default subnet (a real link inside the test
 * namespace) and loopback-alias on a 127/8 subnet. `tag` (≤ 6 chars) keeps interface names apart per file.
 */
export function netDriverCases(tag: string): NetDriverCase[] {
  if (!/^[a-z0-9]{1,6}$/.test(tag)) throw new Error(`net-drivers: tag ${JSON.stringify(tag)} must be 1-6 of [a-z0-9]`)
  return [
    { driver: 'loopback-alias', subnet: '127.107.0.0/16', kernelLink: false },
    { driver: 'linux-netlink', subnet: '10.107.0.0/16', interfaceName: `ngk${tag}0`, kernelLink: true },
  ]
}
