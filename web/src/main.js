// SPDX-License-Identifier: Apache-2.0
// The flow explorer: one page, three views, the whole state in the URL.
import './style.css';
import { dispose } from './chart.js';
import { h, replace } from './dom.js';
import { parse, url } from './state.js';
import * as home from './views/home.js';
import * as visualize from './views/visualize.js';
import * as flows from './views/flows.js';

const views = { home, visualize, flows };
const root = document.getElementById('view');
const status = document.getElementById('status');
let current = null; // {abort, st}

// nav goes to a state (a new history entry) and renders it.
function nav(st) {
  const u = url(st);
  if (u !== window.location.pathname + window.location.search) window.history.pushState(null, '', u);
  render();
}

function cleanup() {
  if (!current) return;
  current.abort.abort();
  for (const el of root.querySelectorAll('.chart')) dispose(el);
  if (root.unbind) root.unbind();
  root.unbind = null;
}

async function render({ refresh = false } = {}) {
  cleanup();
  const st = parse(window.location);
  const abort = new AbortController();
  current = { abort, st };
  for (const a of document.querySelectorAll('header nav a')) a.classList.toggle('active', a.dataset.nav === st.view);
  document.title = `kflow · ${st.view}`;
  root.setAttribute('aria-busy', 'true');
  replace(status, refresh ? 'refreshing…' : 'loading…');
  try {
    await views[st.view].render(root, st, nav, abort.signal);
    if (current && current.abort === abort) replace(status, st.last || st.view === 'home' ? 'live: refreshes as flows are written' : '');
  } catch (e) {
    if (e.name === 'AbortError') return;
    replace(status, '');
    root.append(h('div', { class: 'filter-error', role: 'alert' }, h('div', { class: 'msg' }, e.message)));
  } finally {
    if (current && current.abort === abort) {
      root.setAttribute('aria-busy', 'false');
      root.dataset.rendered = String(Number(root.dataset.rendered || 0) + 1);
    }
  }
}

// Links inside the page navigate without reloading.
document.addEventListener('click', (e) => {
  const a = e.target.closest('a[data-nav]');
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  window.history.pushState(null, '', a.getAttribute('href'));
  render();
});
window.addEventListener('popstate', () => render());

// A view that ends at "now" refreshes when new flows are written.
const events = new EventSource('/api/v1/events');
let seen = false;
events.addEventListener('files', () => {
  if (!seen) {
    seen = true;
    return;
  }
  const st = current && current.st;
  if (st && (st.last || st.view === 'home') && !document.hidden) render({ refresh: true });
});

render();
