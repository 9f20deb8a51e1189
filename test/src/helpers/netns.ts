/**
 * The end-to-end suite runs inside one private network + mount namespace made by
 * `scripts/in-netns.sh` (loopback up, a private copy of /etc/hosts bind-mounted over the real path),
 * which sets `NGROKD_TEST_NETNS=1`. Outside it (not root, no unshare) every test here is skipped with
 * this reason, so nothing ever touches the machine's own interfaces or hosts file.
 */
export const IN_TEST_NETNS = process.env.NGROKD_TEST_NETNS === '1'

/** `test(name, { skip: netnsSkip }, fn)`: false inside the test namespace, else the printed reason. */
export const netnsSkip: string | false = IN_TEST_NETNS
  ? false
  : 'needs the private test namespace (root + unshare): run `npm test` in test/ as root'
