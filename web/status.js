// Shared by the demo pages: shows the client's connection state and transport in #status, and
// mirrors them in data-state / data-transport for tests and styling. Returns the way to stop.
'use strict';

function showConnectionStatus(herald, status) {
  function render(state, detail = {}) {
    const transport = herald.transport ?? (state === 'connected' ? detail.transport : undefined) ?? '';
    const retry = state === 'reconnecting' && typeof detail.delayMs === 'number';
    status.dataset.state = state;
    status.dataset.transport = transport;
    status.title = detail.error instanceof Error ? detail.error.message : '';
    status.querySelector('.state-text').textContent =
      retry ? `${state} · retrying in ${Math.max(1, Math.ceil(detail.delayMs / 1000))} s` : state;
    status.querySelector('.transport').textContent = transport;
  }
  render(herald.state);
  return herald.on('state', render);
}
