// A real OpenID Provider for Sluice's identity tests (gateway/tests/identity_oidc_provider.rs).
//
// Usage: PORT=0 KEY_GENERATION=1 node provider.mjs
//
// Listens on 127.0.0.1:$PORT (0 = pick a free port) and prints one JSON line on stdout once
// it accepts connections: {"issuer": "...", "port": N, "kids": [...]}. Every start generates a
// fresh key set (RS256, ES256, EdDSA) whose kids carry $KEY_GENERATION, so restarting on the
// same port is a key rotation as far as relying parties can tell.
//
// Clients (client_credentials, client_secret_post), each with its own groups claim:
//   agent-a / secret-a -> groups ["agents", "billing"], realm_access.roles ["reader", "writer"]
//   agent-b / secret-b -> groups ["readers"],           realm_access.roles ["reader"]
// Resources (RFC 8707 resource indicators), all issuing JWT access tokens with aud "sluice":
//   urn:sluice:rs256 (default), urn:sluice:es256, urn:sluice:eddsa
import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

const port = Number(process.env.PORT ?? '0');
const generation = process.env.KEY_GENERATION ?? '1';

function signingKey(type, options, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  const kid = `${alg.toLowerCase()}-gen${generation}-${randomBytes(4).toString('hex')}`;
  return { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}

const keys = [
  signingKey('rsa', { modulusLength: 2048 }, 'RS256'),
  signingKey('ec', { namedCurve: 'P-256' }, 'ES256'),
  signingKey('ed25519', {}, 'EdDSA'),
];

const GROUPS = {
  'agent-a': { groups: ['agents', 'billing'], roles: ['reader', 'writer'] },
  'agent-b': { groups: ['readers'], roles: ['reader'] },
};

const RESOURCES = {
  'urn:sluice:rs256': 'RS256',
  'urn:sluice:es256': 'ES256',
  'urn:sluice:eddsa': 'EdDSA',
};

const configuration = {
  clients: Object.keys(GROUPS).map((clientId) => ({
    client_id: clientId,
    client_secret: `secret-${clientId.slice(-1)}`,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_post',
  })),
  jwks: { keys },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:sluice:rs256',
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resourceIndicator) => {
        const alg = RESOURCES[resourceIndicator];
        if (!alg) {
          throw new Provider.errors.InvalidTarget();
        }
        return {
          scope: 'gateway',
          audience: 'sluice',
          accessTokenTTL: 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg } },
        };
      },
    },
  },
  enabledJWA: {
    idTokenSigningAlgValues: ['RS256', 'ES256', 'EdDSA'],
  },
  extraTokenClaims: async (_ctx, token) => {
    const entry = GROUPS[token.clientId];
    if (!entry) return undefined;
    return { groups: entry.groups, realm_access: { roles: entry.roles } };
  },
};

const server = createServer();
server.listen(port, '127.0.0.1', () => {
  const actualPort = server.address().port;
  const issuer = `http://127.0.0.1:${actualPort}`;
  const provider = new Provider(issuer, configuration);
  provider.on('server_error', (_ctx, err) => console.error('server_error', err));
  server.on('request', provider.callback());
  console.log(JSON.stringify({ issuer, port: actualPort, kids: keys.map((k) => k.kid) }));
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
