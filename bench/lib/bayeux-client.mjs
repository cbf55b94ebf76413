// A lean raw Bayeux subscriber for load generation: handshake, subscribe, then a connect loop over
// long-polling or WebSocket, timing each delivery. One cookie per client, so every client holds its
// own long-poll (as separate browsers would).
import { Agent, request } from 'node:http';
import WebSocket from 'ws';

const agent = new Agent({ keepAlive: true, maxSockets: Infinity });

function post(port, path, body, cookie) {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const headers = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) };
    if (cookie) headers.Cookie = cookie;
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        const setCookie = res.headers['set-cookie']?.[0]?.split(';')[0];
        try {
          resolve({ status: res.statusCode, messages: JSON.parse(text), setCookie });
        } catch {
          reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
        }
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

export class Subscriber {
  received = 0;
  /** Connect replies received: deliveries / responses says how much each reply carried. */
  responses = 0;
  /** Sequence numbers seen, to count losses and duplicates. */
  seen = new Set();
  duplicates = 0;
  outOfOrder = 0;
  #lastSeq = -1;
  #stopped = false;

  constructor(port, path, transport, onLatency) {
    this.port = port;
    this.path = path;
    this.transport = transport;
    this.onLatency = onLatency;
  }

  #deliver(message) {
    if (message.data === undefined || message.channel.startsWith('/meta/')) return;
    const { seq, sentAt } = message.data;
    this.onLatency(performance.timeOrigin + performance.now() - sentAt);
    this.received++;
    if (this.seen.has(seq)) this.duplicates++;
    this.seen.add(seq);
    if (seq < this.#lastSeq) this.outOfOrder++;
    this.#lastSeq = seq;
  }

  async start(channel) {
    const types = [this.transport, 'long-polling'];
    const hs = await post(this.port, this.path, [{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: types, id: '1' }]);
    this.cookie = hs.setCookie;
    this.clientId = hs.messages[0].clientId;
    if (!this.clientId) throw new Error(`handshake failed: ${JSON.stringify(hs.messages)}`);
    const sub = await post(this.port, this.path, [{ channel: '/meta/subscribe', clientId: this.clientId, subscription: channel, id: '2' }], this.cookie);
    if (!sub.messages.find((m) => m.channel === '/meta/subscribe')?.successful) throw new Error(`subscribe failed: ${JSON.stringify(sub.messages)}`);
    if (this.transport === 'websocket') await this.#startWebSocket();
    else this.#pollLoop();
  }

  async #pollLoop() {
    let n = 3;
    let first = true;
    while (!this.#stopped) {
      const connect = { channel: '/meta/connect', clientId: this.clientId, connectionType: 'long-polling', id: String(n++) };
      if (first) connect.advice = { timeout: 0 };
      first = false;
      let reply;
      try {
        reply = await post(this.port, this.path, [connect], this.cookie);
      } catch (error) {
        if (!this.#stopped) console.error('poll failed', error.message);
        return;
      }
      this.responses++;
      for (const message of reply.messages) this.#deliver(message);
    }
  }

  #startWebSocket() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${this.port}${this.path}`, { perMessageDeflate: false, headers: this.cookie ? { Cookie: this.cookie } : {} });
      this.ws = ws;
      let n = 3;
      const connect = (timeout) => {
        const message = { channel: '/meta/connect', clientId: this.clientId, connectionType: 'websocket', id: String(n++) };
        if (timeout !== undefined) message.advice = { timeout };
        ws.send(JSON.stringify([message]));
      };
      ws.on('open', () => {
        connect(0);
        resolve();
      });
      ws.on('error', reject);
      ws.on('message', (data) => {
        this.responses++;
        for (const message of JSON.parse(data.toString())) {
          if (message.channel === '/meta/connect') {
            if (!this.#stopped) connect();
          } else this.#deliver(message);
        }
      });
    });
  }

  stop() {
    this.#stopped = true;
    this.ws?.terminate();
  }
}

/** Publishes from its own session (cometd-nodejs-server needs one), returning when acknowledged. */
export class Publisher {
  constructor(port, path) {
    this.port = port;
    this.path = path;
    this.n = 10;
  }

  async start() {
    const hs = await post(this.port, this.path, [{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], id: '1' }]);
    this.cookie = hs.setCookie;
    this.clientId = hs.messages[0].clientId;
  }

  async publish(channel, data) {
    const reply = await post(this.port, this.path, [{ channel, clientId: this.clientId, data, id: String(this.n++) }], this.cookie);
    const ack = reply.messages.find((m) => m.channel === channel && m.successful !== undefined);
    if (!ack?.successful) throw new Error(`publish failed: ${JSON.stringify(reply.messages).slice(0, 300)}`);
  }
}

export function closeAgent() {
  agent.destroy();
}
