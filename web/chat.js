// Herald chat demo: one channel per room (/chat/<room>), history then live messages, and
// "who is here" built from plain pub/sub on /presence/<room>. Everything received is untrusted:
// it is checked before use and only ever rendered as text.
'use strict';

(() => {
  const herald = new Herald('/bayeux');
  window.demo = { herald };

  const DEFAULT_ROOMS = ['lobby', 'random', 'dev'];
  const NAME_KEY = 'herald-demo-name';
  const MAX_TEXT = 2000, MAX_USER = 64;
  const HEARTBEAT_MS = 10_000, PRESENCE_TTL_MS = 25_000, PRUNE_MS = 5_000, ANSWER_EVERY_MS = 2_000;
  // Per page, not per name: two tabs of one person are two entries, and a rename keeps the entry.
  const pageId = Math.random().toString(36).slice(2, 10) + Date.now().toString(36);

  const $ = (id) => document.getElementById(id);
  const [status, nameInput, list, textInput, sendButton, sendError] =
    ['status', 'name', 'messages', 'text', 'send', 'send-error'].map((id) => $(id));

  const knownRooms = new Set(DEFAULT_ROOMS);
  let room, heartbeat, roomSubs = [];
  let joinSeq = 0; // bumped on every join, so a late history answer for a room we left is dropped
  const people = new Map(); // page id → { user, lastSeen }
  let lastHereAt = 0, answerTimer;

  // Strings become text nodes, never markup: user text cannot inject HTML.
  function el(tag, className, ...children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    node.append(...children);
    return node;
  }

  showConnectionStatus(herald, status);
  herald.on('state', (state) => {
    // Others may have dropped us while we were away: tell them now rather than at the next heartbeat.
    if (state === 'connected') announce();
  });
  herald.on('error', (error) => console.warn('herald:', error));
  herald.on('gap', (channel) => {
    if (room !== undefined && channel === `/chat/${room}`) append(el('li', 'notice', 'Some messages may have been missed while disconnected.'));
  });

  // localStorage throws where storage is off (private mode): the name then just won't stick.
  const cleanName = (value) => String(value ?? '').trim().slice(0, 40);
  function saveName(name) {
    try { localStorage.setItem(NAME_KEY, name); } catch { /* see above */ }
  }
  let myName = '';
  try { myName = cleanName(localStorage.getItem(NAME_KEY)); } catch { /* see above */ }
  if (!myName) {
    myName = `guest-${1000 + Math.floor(Math.random() * 9000)}`;
    saveName(myName); // so a reload or a second tab keeps the same guest
  }
  nameInput.value = myName;
  nameInput.addEventListener('change', () => {
    const name = cleanName(nameInput.value);
    nameInput.value = name || myName;
    if (!name || name === myName) return;
    myName = name;
    saveName(name);
    renderPresence();
    announce();
  });

  const sanitiseRoom = (raw) =>
    String(raw).trim().toLowerCase().replace(/\s+/g, '-').replace(/[^a-z0-9_!~()$@-]/g, '').slice(0, 32);
  const roomFromHash = () => sanitiseRoom(new URLSearchParams(location.hash.slice(1)).get('room') ?? '') || 'lobby';
  const roomHash = (name) => `#room=${encodeURIComponent(name)}`;

  function renderRooms() {
    $('rooms').replaceChildren(...[...knownRooms].map((name) => {
      const link = el('a', '', `#${name}`);
      link.href = roomHash(name);
      if (name === room) link.setAttribute('aria-current', 'true');
      return el('li', '', link);
    }));
  }

  async function joinRoom(next) {
    if (location.hash !== roomHash(next)) history.replaceState(null, '', roomHash(next));
    if (next === room) return;
    leaveRoom();
    room = next;
    const seq = ++joinSeq;
    knownRooms.add(room);
    renderRooms();
    $('room-title').textContent = `#${room}`;
    document.title = `#${room} · Herald chat demo`;
    list.replaceChildren();
    people.clear();
    renderPresence();

    const presence = herald.subscribe(`/presence/${room}`, onPresence);
    roomSubs.push(presence);
    // Announce once subscribed, or the others' answers could come before we listen.
    presence.ready.then(() => seq === joinSeq && announce(), () => undefined);
    heartbeat = setInterval(announce, HEARTBEAT_MS);

    const channel = `/chat/${room}`;
    let since;
    try {
      const { messages } = await herald.history(channel, { limit: 50 });
      if (seq !== joinSeq) return;
      for (const message of Array.isArray(messages) ? messages : []) {
        renderMessage(message?.data);
        if (typeof message?.id === 'string') since = message.id;
      }
    } catch (error) {
      if (seq !== joinSeq) return;
      console.warn('no history, live messages only:', error);
    }
    // Resuming right after the last history message: nothing is lost or shown twice in between.
    roomSubs.push(herald.subscribe(channel, renderMessage, since === undefined ? {} : { since }));
    list.scrollTop = list.scrollHeight;
  }

  function leaveRoom() {
    if (room === undefined) return;
    clearInterval(heartbeat);
    clearTimeout(answerTimer);
    answerTimer = undefined;
    publishQuietly(`/presence/${room}`, { type: 'leave', id: pageId });
    for (const sub of roomSubs) sub.unsubscribe();
    roomSubs = [];
  }

  $('join').addEventListener('submit', (event) => {
    event.preventDefault();
    const name = sanitiseRoom($('room-input').value);
    $('room-input').value = '';
    if (name) location.hash = roomHash(name);
  });
  window.addEventListener('hashchange', () => joinRoom(roomFromHash()));

  const isChatMessage = (d) =>
    d !== null && typeof d === 'object' && d.type === 'message' &&
    typeof d.user === 'string' && d.user.length > 0 && d.user.length <= MAX_USER &&
    typeof d.text === 'string' && d.text.length > 0 && d.text.length <= MAX_TEXT &&
    typeof d.at === 'number' && Number.isFinite(d.at);

  // Follow new messages only if the reader is at the bottom, not while they scroll back.
  function append(node) {
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.append(node);
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  function renderMessage(data) {
    if (!isChatMessage(data)) return;
    const when = new Date(data.at);
    const valid = !Number.isNaN(when.getTime());
    const pad = (n) => String(n).padStart(2, '0');
    const time = el('time', 'time', valid ? `${pad(when.getHours())}:${pad(when.getMinutes())}` : '');
    if (valid) time.title = when.toLocaleString();
    const className = data.user === myName ? 'message mine' : 'message';
    append(el('li', className, el('span', 'user', data.user), time, el('span', 'text', data.text)));
  }

  $('send-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const text = textInput.value.trim().slice(0, MAX_TEXT);
    if (!text || sendButton.disabled) return;
    sendButton.disabled = true;
    sendError.textContent = '';
    try {
      await herald.publish(`/chat/${room}`, { type: 'message', user: myName, text, at: Date.now() });
      // Keep anything typed while the message was on its way.
      if (textInput.value.trim().slice(0, MAX_TEXT) === text) textInput.value = '';
    } catch (error) {
      sendError.textContent = `Not sent: ${error instanceof Error ? error.message : String(error)}`;
    } finally {
      sendButton.disabled = false;
      textInput.focus();
    }
  });
  textInput.addEventListener('input', () => { sendError.textContent = ''; });

  function publishQuietly(channel, data) {
    herald.publish(channel, data).catch((error) => console.warn(`publish on ${channel}:`, error));
  }

  function announce() {
    if (room === undefined) return;
    lastHereAt = Date.now();
    publishQuietly(`/presence/${room}`, { type: 'here', user: myName, id: pageId });
  }

  // A newcomer should see us without waiting for our heartbeat, but a crowd of newcomers must not
  // make us flood the room: at most one answer per ANSWER_EVERY_MS, later ones folded into one.
  function answerSoon() {
    if (answerTimer !== undefined) return;
    const wait = lastHereAt + ANSWER_EVERY_MS - Date.now();
    if (wait <= 0) return announce();
    answerTimer = setTimeout(() => { answerTimer = undefined; announce(); }, wait);
  }

  function onPresence(data) {
    if (data === null || typeof data !== 'object' || typeof data.id !== 'string' || !data.id || data.id.length > 64) return;
    if (data.id === pageId) return; // our own echo: we always list ourselves anyway
    if (data.type === 'leave') {
      if (people.delete(data.id)) renderPresence();
      return;
    }
    if (data.type !== 'here' || typeof data.user !== 'string' || !data.user || data.user.length > MAX_USER) return;
    const known = people.get(data.id);
    people.set(data.id, { user: data.user, lastSeen: Date.now() });
    if (known?.user !== data.user) renderPresence();
    if (known === undefined) answerSoon();
  }

  function renderPresence() {
    const entries = [...people.values()].map(({ user }) => ({ user, you: false }));
    entries.push({ user: myName, you: true });
    entries.sort((a, b) => a.user.localeCompare(b.user, undefined, { sensitivity: 'base' }) || b.you - a.you);
    $('presence').replaceChildren(...entries.map(({ user, you }) =>
      (you ? el('li', '', user, ' ', el('span', 'you', '(you)')) : el('li', '', user))));
  }

  setInterval(() => {
    const cutoff = Date.now() - PRESENCE_TTL_MS;
    let changed = false;
    for (const [id, person] of people) {
      if (person.lastSeen < cutoff) changed = people.delete(id) || changed;
    }
    if (changed) renderPresence();
  }, PRUNE_MS);

  window.addEventListener('pagehide', () => {
    if (room !== undefined) publishQuietly(`/presence/${room}`, { type: 'leave', id: pageId });
  });
  // Back from the back/forward cache, or from a hidden tab whose timers the browser slowed down.
  window.addEventListener('pageshow', (event) => event.persisted && announce());
  document.addEventListener('visibilitychange', () => document.visibilityState === 'visible' && announce());

  joinRoom(roomFromHash());
})();
