/**
 * The server side of {@link benchDial} when it is given no target: a binding ingress (the forwarder
 * tests' fake: mTLS, one ConnRequest, accept, echo) with a throwaway CA, in a process of its own so
 * that the measuring process's CPU time is the client's alone. TLS session tickets are on (tls.Server's
 * default). Prints one JSON {@link BenchDialTarget} line when ready; exits when stdin closes.
 */
import { TestCa, startFakeIngress } from '@ngrokd/core/testing'
import type { BenchDialTarget } from './dial-bench.js'

const ca = TestCa.create({ commonName: 'ngrokd bench CA' })
const server = ca.issueKeyPair({ usage: 'server', ipAddresses: ['127.0.0.1'] })
const client = ca.issueKeyPair({ usage: 'client' })
// one CA for every role the fake ingress knows of; only the server certificate and the client CA are used
const ingress = await startFakeIngress({
  pki: { ingressCaPem: ca.certPem, ingress: server, clientCaPem: ca.certPem, clientA: client, clientB: client, otherCaPem: ca.certPem, otherClient: client, otherIngress: server, chainRootPem: ca.certPem, chainIntermediatePem: ca.certPem, chainedIngress: server },
  onRequest: (conn) => {
    conn.accept()
    conn.socket.on('end', () => conn.socket.end()).resume()
    conn.socket.once('close', () => ingress.connections.splice(ingress.connections.indexOf(conn), 1)) // bounded memory over long runs
  },
})
const target: BenchDialTarget = { endpoint: ingress.endpoint, ca: ca.certPem, credentials: client, hostname: 'bench.dial', port: 80 }
process.stdout.write(`${JSON.stringify(target)}\n`)
process.stdin.resume()
process.stdin.once('end', () => void ingress.close().then(() => process.exit(0)))
