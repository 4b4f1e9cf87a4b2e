// oidc-provider's storage on Redis (the adapter interface of
// oidc-provider's docs: upsert, find, findByUid, findByUserCode, consume,
// destroy, revokeByGrantId). Our own, written for the benchmark peer.
//
// One key per stored object, `<model>:<id>`, holding its JSON with the
// model's TTL. Objects that can be consumed (codes, refresh tokens) are a
// hash instead, so `consume` is one HSET beside the payload rather than a
// read-modify-write. Secondary indexes: a list of keys per grant (for
// revokeByGrantId), a session's uid and a device code's user code.

import Redis from 'ioredis';

const CONSUMABLE = new Set([
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

/** Seconds a grant lives (the provider's ttl.Grant uses the same). */
export const GRANT_TTL = 14 * 24 * 60 * 60;

let client;

/** The one connection of this process, opened on first use (REDIS_URL). */
function redis() {
  if (!client) {
    client = new Redis(process.env.REDIS_URL, { keyPrefix: 'oidc:' });
  }
  return client;
}

const grantKey = (grantId) => `grant:${grantId}`;
const uidKey = (uid) => `sessionUid:${uid}`;
const userCodeKey = (userCode) => `userCode:${userCode}`;

export default class RedisAdapter {
  constructor(name) {
    this.name = name;
    this.consumable = CONSUMABLE.has(name);
  }

  key(id) {
    return `${this.name}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    const json = JSON.stringify(payload);
    // One round trip: the object, its expiry and its indexes together.
    const multi = redis().multi();
    if (this.consumable) {
      multi.hset(key, 'payload', json);
      if (expiresIn) multi.expire(key, expiresIn);
    } else if (expiresIn) {
      multi.set(key, json, 'EX', expiresIn);
    } else {
      multi.set(key, json);
    }
    if (payload.grantId) {
      // No token outlives its grant: the list lives as long as grants do.
      const list = grantKey(payload.grantId);
      multi.rpush(list, key);
      multi.expire(list, GRANT_TTL);
    }
    if (payload.uid && expiresIn) multi.set(uidKey(payload.uid), id, 'EX', expiresIn);
    if (payload.userCode && expiresIn) multi.set(userCodeKey(payload.userCode), id, 'EX', expiresIn);
    await multi.exec();
  }

  async find(id) {
    const key = this.key(id);
    if (this.consumable) {
      const found = await redis().hgetall(key);
      if (!found || !found.payload) return undefined;
      const payload = JSON.parse(found.payload);
      if (found.consumed) payload.consumed = Number(found.consumed);
      return payload;
    }
    const json = await redis().get(key);
    return json ? JSON.parse(json) : undefined;
  }

  async findByUid(uid) {
    const id = await redis().get(uidKey(uid));
    return id ? this.find(id) : undefined;
  }

  async findByUserCode(userCode) {
    const id = await redis().get(userCodeKey(userCode));
    return id ? this.find(id) : undefined;
  }

  async consume(id) {
    await redis().hset(this.key(id), 'consumed', Math.floor(Date.now() / 1000));
  }

  async destroy(id) {
    await redis().del(this.key(id));
  }

  async revokeByGrantId(grantId) {
    const list = grantKey(grantId);
    const keys = await redis().lrange(list, 0, -1);
    await redis().del(...keys, list);
  }
}
