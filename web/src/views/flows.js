// SPDX-License-Identifier: Apache-2.0
// Flows ("Discover"): the records behind a selection, filtered with
// nfdump's language, sorted by a column, paged, optionally paired in both
// directions (nfdump -B).
import { api, windowParams } from '../api.js';
import { bindArrows, filterBox, showFilterError, timeControls } from '../controls.js';
import { h, replace } from '../dom.js';
import { duration, num, time } from '../format.js';

// Columns: title, cell, and the server-side order a click sorts by.
const columns = [
  ['start', (r) => time(r.first), 'tstart'],
  ['end', (r) => time(r.last), 'tend'],
  ['duration', (r) => duration(r.duration_ms), 'duration'],
  ['proto', (r) => r.proto_name],
  ['source', (r) => r.src],
  ['port', (r) => String(r.src_port)],
  ['destination', (r) => r.dst],
  ['port', (r) => (r.icmp_type !== undefined || r.icmp_code !== undefined ? `${r.icmp_type || 0}.${r.icmp_code || 0}` : String(r.dst_port))],
  ['application', application],
  ['flags', (r) => flags(r.tcp_flags || 0)],
  ['packets', (r) => num(r.packets), 'packets'],
  ['bytes', (r) => num(r.bytes, 'B'), 'bytes'],
  ['bps', (r) => num(r.bps, 'bps'), 'bps'],
  ['exporter', (r) => r.exporter || 'local'],
  ['in', (r) => String(r.in_if || 0)],
  ['out', (r) => String(r.out_if || 0)],
  ['dir', (r) => r.direction],
];

// application names the local socket's application: its container (the
// first 12 digits, as docker ps shows it; its scope is a unit too), else
// its systemd unit, else its pod; the cgroup path on hover.
function application(r) {
  if (!r.cgroup) return '';
  const name = (r.container && `container ${r.container.slice(0, 12)}`) || r.unit || (r.pod && `pod ${r.pod}`) || r.cgroup;
  return h('span', { class: 'app', title: r.cgroup }, name);
}

const pairColumns = [
  ['out packets', (r) => num(r.out_packets || 0), 'packets'],
  ['out bytes', (r) => num(r.out_bytes || 0, 'B'), 'bytes'],
  ['flows', (r) => num(r.flows), 'flows'],
];

function flags(f) {
  return 'CEUAPRSF'.split('').map((c, i) => (f & (0x80 >> i) ? c : '.')).join('');
}

export async function render(root, st, nav, signal) {
  const errEl = h('div', { class: 'filter-error', id: 'query-error', role: 'alert' });
  const tableEl = h('div', { class: 'table-slot', id: 'flows' });
  const pager = h('div', { class: 'row pager' });
  replace(root, h('div', { class: 'flows' },
    h('div', { class: 'controls' },
      timeControls(st, nav),
      filterBox(st, (f) => nav({ ...st, filter: f, offset: 0 })),
      h('div', { class: 'row' },
        h('label', {}, h('input', { type: 'checkbox', id: 'pair', checked: st.pair, onchange: (e) => nav({ ...st, pair: e.target.checked, offset: 0 }) }),
          ' pair both directions (-B)'),
        h('label', {}, 'rows ', h('select', { id: 'limit', onchange: (e) => nav({ ...st, limit: Number(e.target.value), offset: 0 }) },
          [20, 50, 100, 500].map((n) => h('option', { value: n, selected: st.limit === n }, String(n))))))),
    errEl, pager, tableEl));
  root.unbind = bindArrows(root);
  let res;
  try {
    res = await api('flows', { ...windowParams(st), filter: st.filter, order: st.order, offset: st.offset, limit: st.limit, bidir: st.pair ? 'B' : '' }, signal);
  } catch (e) {
    if (e.name !== 'AbortError') showFilterError(errEl, e);
    return;
  }
  const cols = st.pair ? [...columns, ...pairColumns] : columns;
  const head = cols.map(([title, , order]) => {
    if (!order) return h('th', {}, title);
    const active = st.order === order;
    return h('th', { class: active ? 'sorted' : 'sortable' },
      h('button', { type: 'button', class: 'sort', 'data-order': order, title: `sort by ${order}`, onclick: () => nav({ ...st, order: active ? '' : order, offset: 0 }) },
        title, active ? (order.startsWith('t') ? ' ▲' : ' ▼') : ''));
  });
  replace(tableEl, h('table', { class: 'grid flows-table', id: 'flows-table' },
    h('thead', {}, h('tr', {}, head)),
    h('tbody', {}, res.rows.map((r) => h('tr', {}, cols.map(([, cell]) => h('td', {}, cell(r))))))));
  const first = res.rows.length ? res.offset + 1 : 0;
  const last = res.offset + res.rows.length;
  replace(pager,
    h('button', { type: 'button', id: 'prev', disabled: res.offset === 0, onclick: () => nav({ ...st, offset: Math.max(0, st.offset - st.limit) }) }, '‹ previous'),
    h('span', { id: 'page' }, `${first}–${last} of ${res.exact ? '' : 'at least '}${res.matched.toLocaleString('en-US')}${st.pair ? ' pairs' : ' records'}`),
    h('button', { type: 'button', id: 'next', disabled: !res.more, onclick: () => nav({ ...st, offset: st.offset + st.limit }) }, 'next ›'));
}
