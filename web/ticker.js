// Herald stock ticker demo: every quote published under /stocks/** updates one table row.
// Quotes come from anyone who may publish, so each one is checked and only rendered as text.
'use strict';

(() => {
  const herald = new Herald('/bayeux');
  window.demo = { herald };

  const FLASH_MS = 600;
  const status = document.getElementById('status');
  const tbody = document.querySelector('#quotes tbody');
  const empty = document.getElementById('quotes-empty');
  const quotes = new Map(); // symbol → { row, cells, price, flashTimer }

  showConnectionStatus(herald, status);
  herald.on('error', (error) => console.warn('herald:', error));

  const isNumber = (value) => typeof value === 'number' && Number.isFinite(value);
  const pad = (n) => String(n).padStart(2, '0');
  // Rounds first, so a tiny float residue shows as 0.00 rather than as a signed -0.00.
  function signed(value, suffix = '') {
    const digits = Math.abs(value).toFixed(2);
    return (digits === '0.00' ? '' : value > 0 ? '+' : '-') + digits + suffix;
  }

  function parseQuote(data, channel) {
    if (data === null || typeof data !== 'object' || Array.isArray(data)) return undefined;
    const symbol = data.symbol ?? String(channel).split('/').pop();
    if (typeof symbol !== 'string' || symbol.length < 1 || symbol.length > 12) return undefined;
    if (!isNumber(data.price) || (data.change !== undefined && !isNumber(data.change))) return undefined;
    return { symbol, price: data.price, change: data.change };
  }

  function rowFor(symbol) {
    let quote = quotes.get(symbol);
    if (quote !== undefined) return quote;
    const row = document.createElement('tr');
    row.dataset.symbol = symbol;
    const cells = {};
    for (const name of ['symbol', 'price', 'change', 'time']) {
      cells[name] = row.appendChild(document.createElement('td'));
      cells[name].className = name;
    }
    cells.symbol.textContent = symbol;
    const next = [...tbody.rows].find((other) => other.dataset.symbol > symbol);
    tbody.insertBefore(row, next ?? null);
    quote = { row, cells, price: undefined, flashTimer: undefined };
    quotes.set(symbol, quote);
    empty.hidden = true;
    return quote;
  }

  function flash(quote, direction) {
    clearTimeout(quote.flashTimer);
    quote.row.classList.remove('up', 'down');
    void quote.row.offsetWidth; // a reflow, so the animation restarts when a row changes mid-flash
    quote.row.classList.add(direction);
    quote.flashTimer = setTimeout(() => quote.row.classList.remove(direction), FLASH_MS);
  }

  function onQuote(data, info) {
    const parsed = parseQuote(data, info.channel);
    if (parsed === undefined) return;
    const quote = rowFor(parsed.symbol);
    const previous = quote.price;
    // The first quote of a symbol has nothing to compare with: use the feed's own change, if any.
    const change = previous === undefined ? parsed.change : parsed.price - previous;
    quote.price = parsed.price;
    const { cells } = quote;
    cells.price.textContent = parsed.price.toFixed(2);
    if (change === undefined) {
      cells.change.textContent = '—';
    } else {
      const base = parsed.price - change;
      const percent = base === 0 ? '' : ` (${signed((change / base) * 100, '%')})`;
      cells.change.textContent = signed(change) + percent;
    }
    cells.change.classList.toggle('pos', change > 0);
    cells.change.classList.toggle('neg', change < 0);
    const now = new Date();
    cells.time.textContent = `${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}`;
    if (previous !== undefined && parsed.price !== previous) flash(quote, parsed.price > previous ? 'up' : 'down');
  }

  herald.subscribe('/stocks/**', onQuote);
})();
