// Lean load clients for bench/compare.mjs, one class per wire shape. Each subscribes one channel,
// records when it became subscribed (`subscribedAt`: the moment after which the server must deliver
// every publish to it) and when it became ready (`readyAt`: fully connected, e.g. a Bayeux client's
// first connect answered), and hands each message's data ({seq, sentAt}) to `onData`.
//
//   bayeux-ws   raw Bayeux over one WebSocket: handshake, subscribe, connect loop (Herald, Faye)
//   bayeux-lp   raw Bayeux over HTTP long-polling (raw HTTP/1.1, one connection and cookie per client; Herald, cometd-nodejs-server)
//   rest-ws     GET /sub/<channel> upgraded to a WebSocket, a text frame per message (Herald, Nchan)
//   rest-sse    GET /sub/<channel> with Accept: text/event-stream (Herald, Nchan)
//   socketio    raw engine.io v4 over WebSocket, `subscribe` event acknowledged (bench/servers/socketio.mjs)
//
// `unwrap` says what a frame or event holds: 'herald' ({id, channel, data}) or 'raw' (the data itself).
import { request } from 'node:http';
import { connect } from 'node:net';
import WebSocket from 'ws';

const now = () => performance.timeOrigin + performance.now();

class Client {
  subscribedAt = 0;
  readyAt = 0;
  #stopped = false;

  /** @param target {port, path, channel, localAddress, unwrap} */
  constructor(target, onData) {
    this.target = target;
    this.onData = onData;
  }

  get stopped() {
    return this.#stopped;
  }

  stop() {
    this.#stopped = true;
    this.close();
  }

  close() {}

  /** The URL path of a plain-HTTP subscription. */
  get subPath() {
    return `/sub${this.target.channel}`;
  }

  deliverText(text) {
    const value = JSON.parse(text);
    if (this.target.unwrap === 'herald') {
      if (value.data !== undefined) this.onData(value.data);
    } else this.onData(value);
  }
}

function openWebSocket(client, path) {
  const { port, localAddress } = client.target;
  return new WebSocket(`ws://127.0.0.1:${port}${path}`, { perMessageDeflate: false, localAddress });
}

class RestWebSocket extends Client {
  start() {
    return new Promise((resolve, reject) => {
      const ws = openWebSocket(this, this.subPath);
      this.ws = ws;
      ws.once('open', () => {
        this.subscribedAt = this.readyAt = now();
        resolve();
      });
      ws.once('error', reject);
      ws.on('message', (data) => this.deliverText(data.toString()));
    });
  }

  close() {
    this.ws?.terminate();
  }
}

class RestEventSource extends Client {
  start() {
    return new Promise((resolve, reject) => {
      const { port, localAddress } = this.target;
      const req = request({ host: '127.0.0.1', port, path: this.subPath, localAddress, agent: false, headers: { Accept: 'text/event-stream' } }, (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`SSE ${res.statusCode}`));
          res.resume();
          return;
        }
        this.subscribedAt = this.readyAt = now();
        resolve();
        let buffered = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          buffered += chunk;
          let end;
          while ((end = buffered.indexOf('\n\n')) >= 0) {
            const event = buffered.slice(0, end);
            buffered = buffered.slice(end + 2);
            const data = event
              .split('\n')
              .filter((line) => line.startsWith('data:'))
              .map((line) => line.slice(line.startsWith('data: ') ? 6 : 5))
              .join('\n');
            if (data !== '' && !/^event: gap$/m.test(event)) this.deliverText(data);
          }
        });
        res.on('error', () => {});
      });
      this.req = req;
      req.once('error', reject);
      req.end();
    });
  }

  close() {
    this.req?.destroy();
  }
}

class SocketIo extends Client {
  start() {
    return new Promise((resolve, reject) => {
      const ws = openWebSocket(this, '/socket.io/?EIO=4&transport=websocket');
      this.ws = ws;
      ws.once('error', reject);
      ws.on('message', (raw) => {
        const text = raw.toString();
        if (text === '2') ws.send('3'); // engine.io ping → pong
        else if (text.startsWith('42')) {
          const [event, data] = JSON.parse(text.slice(2));
          if (event === 'message') this.onData(data);
        } else if (text.startsWith('0')) ws.send('40'); // engine.io open → socket.io connect
        else if (text.startsWith('40')) ws.send(`420${JSON.stringify(['subscribe', this.target.channel])}`);
        else if (text.startsWith('430')) {
          this.subscribedAt = this.readyAt = now();
          resolve();
        } else if (text.startsWith('44')) reject(new Error(`socket.io connect refused: ${text}`));
      });
    });
  }

  close() {
    this.ws?.terminate();
  }
}

class BayeuxWebSocket extends Client {
  #n = 0;

  start() {
    return new Promise((resolve, reject) => {
      const ws = openWebSocket(this, this.target.path);
      this.ws = ws;
      const send = (message) => ws.send(JSON.stringify([{ ...message, id: String(++this.#n) }]));
      const connect = (advice) => send({ channel: '/meta/connect', clientId: this.clientId, connectionType: 'websocket', ...(advice && { advice }) });
      ws.once('open', () => send({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'] }));
      ws.once('error', reject);
      ws.on('message', (raw) => {
        for (const message of JSON.parse(raw.toString())) {
          switch (message.channel) {
            case '/meta/handshake':
              if (!message.successful) return reject(new Error(`handshake failed: ${JSON.stringify(message)}`));
              this.clientId = message.clientId;
              send({ channel: '/meta/subscribe', clientId: this.clientId, subscription: this.target.channel });
              break;
            case '/meta/subscribe':
              if (!message.successful) return reject(new Error(`subscribe failed: ${JSON.stringify(message)}`));
              this.subscribedAt = now();
              connect({ timeout: 0 });
              break;
            case '/meta/connect':
              if (!message.successful) return reject(new Error(`connect failed: ${JSON.stringify(message)}`));
              if (this.readyAt === 0) {
                this.readyAt = now();
                resolve();
              }
              if (!this.stopped) connect();
              break;
            default:
              if (message.data !== undefined && !message.channel.startsWith('/meta/')) this.onData(message.data);
          }
        }
      });
    });
  }

  close() {
    this.ws?.terminate();
  }
}

/**
 * One HTTP/1.1 connection a client posts on, a request at a time, replies read by hand (Content-Length
 * or chunked). Node's HTTP client costs some 140 µs per long-poll cycle here (three times the
 * server's): with it the load processes, not the server, set how fast 19,000 polls come back.
 */
class RawHttp {
  #socket;
  #buffer = '';
  #waiting;

  constructor(target) {
    this.target = target;
  }

  post(body, cookie) {
    const { port, path, localAddress } = this.target;
    if (this.#socket === undefined || this.#socket.destroyed) {
      const socket = (this.#socket = connect({ host: '127.0.0.1', port, localAddress }));
      this.#buffer = '';
      socket.setEncoding('latin1');
      socket.on('data', (text) => this.#read(text));
      socket.on('error', (error) => this.#fail(error));
      socket.on('close', () => this.#fail(new Error('connection closed')));
    }
    const cookieLine = cookie ? `Cookie: ${cookie}\r\n` : '';
    this.#socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n${cookieLine}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    return new Promise((resolve, reject) => (this.#waiting = { resolve, reject }));
  }

  close() {
    this.#socket?.destroy();
  }

  #fail(error) {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.reject(error);
  }

  #read(text) {
    this.#buffer += text;
    const end = this.#buffer.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.#buffer.slice(0, end);
    let body;
    let rest;
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (length) {
      const stop = end + 4 + Number(length[1]);
      if (this.#buffer.length < stop) return;
      body = this.#buffer.slice(end + 4, stop);
      rest = this.#buffer.slice(stop);
    } else {
      // Chunked: complete once the last chunk is in.
      const last = this.#buffer.indexOf('\r\n0\r\n\r\n', end);
      if (last < 0) return;
      body = '';
      for (let at = end + 4; ; ) {
        const lineEnd = this.#buffer.indexOf('\r\n', at);
        const size = parseInt(this.#buffer.slice(at, lineEnd), 16);
        if (size === 0) {
          rest = this.#buffer.slice(lineEnd + 4);
          break;
        }
        body += this.#buffer.slice(lineEnd + 2, lineEnd + 2 + size);
        at = lineEnd + 4 + size;
      }
    }
    this.#buffer = rest;
    const status = Number(head.slice(9, 12));
    const setCookie = /\r\nset-cookie: *([^;\r]+)/i.exec(head)?.[1];
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (/\r\nconnection: *close/i.test(head)) this.#socket.destroy();
    waiting?.resolve({ status, setCookie, text: Buffer.from(body, 'latin1').toString('utf8') });
  }
}

class BayeuxLongPoll extends Client {
  #n = 0;
  #http;

  async #post(message) {
    this.#http ??= new RawHttp(this.target);
    const reply = await this.#http.post(JSON.stringify([{ ...message, id: String(++this.#n) }]), this.cookie);
    this.cookie ??= reply.setCookie;
    try {
      return JSON.parse(reply.text);
    } catch {
      throw new Error(`HTTP ${reply.status}: ${reply.text.slice(0, 200)}`);
    }
  }

  async start() {
    const [hs] = await this.#post({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] });
    if (!hs?.successful) throw new Error(`handshake failed: ${JSON.stringify(hs)}`);
    this.clientId = hs.clientId;
    const replies = await this.#post({ channel: '/meta/subscribe', clientId: this.clientId, subscription: this.target.channel });
    if (!replies.find((m) => m.channel === '/meta/subscribe')?.successful) throw new Error(`subscribe failed: ${JSON.stringify(replies)}`);
    this.subscribedAt = now();
    this.#receive(await this.#connect({ timeout: 0 }));
    this.readyAt = now();
    this.#loop();
  }

  #connect(advice) {
    return this.#post({ channel: '/meta/connect', clientId: this.clientId, connectionType: 'long-polling', ...(advice && { advice }) });
  }

  #receive(messages) {
    for (const message of messages) {
      if (message.channel === '/meta/connect' && !message.successful) throw new Error(`connect failed: ${JSON.stringify(message)}`);
      if (message.data !== undefined && !message.channel.startsWith('/meta/')) this.onData(message.data);
    }
  }

  async #loop() {
    while (!this.stopped) {
      try {
        this.#receive(await this.#connect());
      } catch (error) {
        if (!this.stopped) console.error(`long-poll failed: ${error.message}`);
        return;
      }
    }
  }

  close() {
    this.#http?.close();
  }
}

export const CLIENT_KINDS = { 'bayeux-ws': BayeuxWebSocket, 'bayeux-lp': BayeuxLongPoll, 'rest-ws': RestWebSocket, 'rest-sse': RestEventSource, socketio: SocketIo };
