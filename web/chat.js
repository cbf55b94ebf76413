// Herald chat demo: one channel per room (/chat/<room>), history then live messages, and
// "who is here" from Herald's presence: the room's members when it is joined, then its join and
// leave events (the demo's rooms have them: `herald serve --demo` adds the rule
// `{"pattern": "/chat/**", "presence": "events"}`). No token here: each page names itself with a
// handle sent at the handshake (`ext.herald.info`), shown as the member's `info`. Everything
// received is untrusted: it is checked before use and only ever rendered as text.
'use strict';

(() => {
  const DEFAULT_ROOMS = ['lobby', 'random', 'dev'];
  const NAME_KEY = 'herald-demo-name', BROWSER_KEY = 'herald-demo-browser';
  const MAX_TEXT = 2000, MAX_USER = 64;

  const $ = (id) => document.getElementById(id);
  const [status, nameInput, list, textInput, sendButton, sendError] =
    ['status', 'name', 'messages', 'text', 'send', 'send-error'].map((id) => $(id));

  const knownRooms = new Set(DEFAULT_ROOMS);
  let room, roomSubs = [];
  let joinSeq = 0; // bumped on every join, so a late answer for a room we left is dropped
  const people = new Map(); // member key → name

  // Strings become text nodes, never markup: user text cannot inject HTML.
  function el(tag, className, ...children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    node.append(...children);
    return node;
  }

  // localStorage throws where storage is off (private mode): the name then just won't stick.
  const cleanName = (value) => String(value ?? '').trim().slice(0, 40);
  function stored(key, make) {
    let value = '';
    try { value = cleanName(localStorage.getItem(key)); } catch { /* see above */ }
    if (value) return value;
    value = make();
    try { localStorage.setItem(key, value); } catch { /* see above */ } // so a reload or a second tab keeps it
    return value;
  }
  let myName = stored(NAME_KEY, () => `guest-${1000 + Math.floor(Math.random() * 9000)}`);
  // Tabs of one browser share one connection, so one member: this id tells the page it is itself.
  const browserId = stored(BROWSER_KEY, () => Math.random().toString(36).slice(2, 10) + Date.now().toString(36));

  // The handle is sent at the handshake: a new name is a new connection (others see the new name
  // join now, and the old one leave after the server's grace window).
  let herald, stopStatus;
  function connect() {
    stopStatus?.();
    herald?.close();
    herald = new Herald('/bayeux', { ext: { herald: { info: { name: myName, id: browserId } } } });
    window.demo = { herald };
    stopStatus = showConnectionStatus(herald, status);
    herald.on('error', (error) => console.warn('herald:', error));
    herald.on('gap', (channel) => {
      if (room !== undefined && channel === `/chat/${room}`) append(el('li', 'notice', 'Some messages may have been missed while disconnected.'));
    });
  }
  connect();

  nameInput.value = myName;
  nameInput.addEventListener('change', () => {
    const name = cleanName(nameInput.value);
    nameInput.value = name || myName;
    if (!name || name === myName) return;
    myName = name;
    try { localStorage.setItem(NAME_KEY, name); } catch { /* see above */ }
    const current = room;
    leaveRoom();
    room = undefined;
    connect();
    joinRoom(current);
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
    const sub = herald.subscribe(channel, renderMessage, since === undefined ? {} : { since });
    roomSubs.push(sub);
    list.scrollTop = list.scrollHeight;
    // Joins and leaves from now on; those already here from a listing once subscribed (a join
    // told meanwhile is in both: the map holds it once).
    sub.on('join', (member) => seq === joinSeq && addPerson(member) && renderPresence());
    sub.on('leave', (member) => seq === joinSeq && people.delete(memberKey(member)) && renderPresence());
    try {
      await sub.ready;
      const { members } = await herald.presence(channel);
      if (seq !== joinSeq) return;
      for (const member of Array.isArray(members) ? members : []) addPerson(member);
      renderPresence();
    } catch (error) {
      if (seq === joinSeq) console.warn('who is here is unknown:', error);
    }
  }

  function leaveRoom() {
    if (room === undefined) return;
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

  const memberKey = (member) => `${member?.anonymous === true ? 's' : 'u'}:${member?.user}`;

  // A member is shown by the name in its info (a page's handle); itself (this browser) is always listed as "(you)".
  function addPerson(member) {
    if (member === null || typeof member !== 'object' || typeof member.user !== 'string') return false;
    const info = member.info !== null && typeof member.info === 'object' ? member.info : {};
    if (info.id === browserId) return false;
    const name = typeof info.name === 'string' && info.name.trim() ? cleanName(info.name) : 'guest';
    people.set(memberKey(member), name);
    return true;
  }

  function renderPresence() {
    const entries = [...people.values()].map((user) => ({ user, you: false }));
    entries.push({ user: myName, you: true });
    entries.sort((a, b) => a.user.localeCompare(b.user, undefined, { sensitivity: 'base' }) || b.you - a.you);
    $('presence').replaceChildren(...entries.map(({ user, you }) =>
      (you ? el('li', '', user, ' ', el('span', 'you', '(you)')) : el('li', '', user))));
  }

  joinRoom(roomFromHash());
})();
