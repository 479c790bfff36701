// A js-ipfs node for the cascade-ipfs tests, on loopback only:
//   node --require ./preload.cjs start.mjs REPO API_PORT [GATEWAY_PORT] [SWARM_PORT]
// Without SWARM_PORT it is offline (dials nothing). With one it listens on 127.0.0.1:SWARM_PORT
// only, with no bootstrap peers, no MDNS, no webRTCStar, no delegates and no preload nodes, so it
// connects to nothing but the peers a test hands it (swarm/connect). Prints "ready" when serving;
// stops on SIGTERM or SIGINT.
import { create } from 'ipfs-core'
import { HttpApi } from 'ipfs-http-server'
import { HttpGateway } from 'ipfs-http-gateway'

const [repo, apiPort, gatewayPort, swarmPort] = process.argv.slice(2)
const online = Boolean(swarmPort && swarmPort !== '0')
const node = await create({
  repo,
  offline: !online,
  silent: true,
  preload: { enabled: false },
  relay: { enabled: false, hop: { enabled: false } },
  config: {
    Addresses: {
      API: `/ip4/127.0.0.1/tcp/${apiPort}`,
      Gateway: gatewayPort && gatewayPort !== '0' ? `/ip4/127.0.0.1/tcp/${gatewayPort}` : '',
      Swarm: online ? [`/ip4/127.0.0.1/tcp/${swarmPort}`] : [],
      Delegates: []
    },
    Bootstrap: [],
    Discovery: { MDNS: { Enabled: false }, webRTCStar: { Enabled: false } },
    Routing: { Type: 'none' }
  }
})
const api = new HttpApi(node)
await api.start()
let gateway = null
if (gatewayPort && gatewayPort !== '0') {
  gateway = new HttpGateway(node)
  await gateway.start()
}
const { id } = await node.id()
console.log(`ready ${id.toString()}`)

async function stop () {
  try {
    if (gateway) await gateway.stop()
    await api.stop()
    await node.stop()
  } finally {
    process.exit(0)
  }
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
