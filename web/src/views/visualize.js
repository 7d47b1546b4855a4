// SPDX-License-Identifier: Apache-2.0
// Visualize: traffic over time for the top keys of up to three
// dimensions, as stacked areas, lines, 100 % stacked or a sankey; the
// reverse direction below the axis; the previous period; a table of each
// line's figures, exportable as CSV and JSON, each line linked to its
// flows.
import { api, windowParams } from '../api.js';
import { palette, sankeyChart, timeChart } from '../chart.js';
import { bindArrows, filterBox, showFilterError, timeControls } from '../controls.js';
import { h, replace } from '../dom.js';
import { num, scale, units } from '../format.js';
import { absolute, url } from '../state.js';

const dimNames = {
  srcip: 'source address', dstip: 'destination address', 'srcip/24/64': 'source /24 or /64', 'dstip/24/64': 'destination /24 or /64',
  srcport: 'source port', dstport: 'destination port', proto: 'protocol', flags: 'TCP flags', tos: 'ToS', inif: 'input interface',
  outif: 'output interface', vlan: 'VLAN', exporter: 'exporter', dir: 'direction',
  unit: 'application (systemd unit)', container: 'container', pod: 'Kubernetes pod', cgroup: 'cgroup',
};

function select(id, label, value, options, onchange) {
  return h('label', {}, label, ' ',
    h('select', { id, onchange: (e) => onchange(e.target.value) },
      options.map(([v, t]) => h('option', { value: v, selected: String(value) === String(v) }, t))));
}

// combine joins the view's filter and a line's.
function combine(a, b) {
  if (!a) return b;
  if (!b || b === 'any') return a;
  return `(${a}) and (${b})`;
}

function download(name, type, text) {
  const a = h('a', { href: URL.createObjectURL(new Blob([text], { type })), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

const csvField = (s) => (/[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);

export async function render(root, st, nav, signal) {
  const dims = st.dims.split(',').filter(Boolean).slice(0, 3);
  const setDim = (i, v) => {
    const d = dims.slice();
    if (v) d[i] = v;
    else d.splice(i);
    nav({ ...st, dims: d.filter(Boolean).join(',') });
  };
  const dimOptions = [['', '—'], ...Object.entries(dimNames)];
  const graphEl = h('div', { class: 'chart', id: 'chart' });
  const tableEl = h('div', { class: 'table-slot', id: 'table' });
  const errEl = h('div', { class: 'filter-error', id: 'query-error', role: 'alert' });
  const info = h('span', { class: 'info', id: 'info' });
  const controls = h('div', { class: 'controls' },
    timeControls(st, nav),
    filterBox(st, (f) => nav({ ...st, filter: f })),
    h('div', { class: 'row' },
      select('unit', 'unit', st.unit, Object.entries(units).map(([k, u]) => [k, u.label]), (v) => nav({ ...st, unit: v })),
      [0, 1, 2].map((i) => (i <= dims.length ? select(`dim${i}`, i ? 'then' : 'by', dims[i] || '', i ? dimOptions : dimOptions.slice(1), (v) => setDim(i, v)) : null)),
      select('top', 'top', st.top, [5, 10, 15, 20, 30, 50].map((n) => [n, String(n)]), (v) => nav({ ...st, top: Number(v) })),
      select('rank', 'ranked by', st.rank, [['avg', 'average'], ['peak', 'peak'], ['last', 'last']], (v) => nav({ ...st, rank: v })),
      select('graph', 'graph', st.graph, [['stacked', 'stacked area'], ['lines', 'lines'], ['percent', '100 % stacked'], ['sankey', 'sankey (2–3 dims)']], (v) => nav({ ...st, graph: v })),
      select('prev', 'previous', st.prev, [['', 'none'], ['1h', 'hour'], ['1d', 'day'], ['1w', 'week']], (v) => nav({ ...st, prev: v })),
      h('label', {}, h('input', { type: 'checkbox', id: 'bidir', checked: st.bidir, onchange: (e) => nav({ ...st, bidir: e.target.checked }) }), ' bidirectional')));
  replace(root, h('div', { class: 'visualize' }, controls, errEl, graphEl, h('div', { class: 'under' }, info), tableEl));
  root.unbind = bindArrows(root);
  const u = units[st.unit];
  const common = { ...windowParams(st), filter: st.filter, dims: dims.join(','), top: st.top, rank: st.rank, unit: st.unit };
  try {
    if (st.graph === 'sankey') {
      if (dims.length < 2) {
        replace(errEl, h('div', { class: 'msg' }, 'A sankey needs 2 or 3 dimensions: choose a second one.'));
        return;
      }
      const sk = await api('sankey', common, signal);
      sankeyChart(graphEl, sk, u.rate);
      replace(info, `${sk.total.flows.toLocaleString('en-US')} flows`);
      replace(tableEl, h('table', { class: 'grid', id: 'links' },
        h('thead', {}, h('tr', {}, h('th', {}, 'from'), h('th', {}, 'to'), h('th', {}, `average ${u.rate}`), h('th', {}, `total ${u.total}`))),
        h('tbody', {}, sk.links.map((l) => h('tr', {}, h('td', {}, l.source.replace(/^\d:/, '')), h('td', {}, l.target.replace(/^\d:/, '')),
          h('td', {}, num(l.value, u.rate)), h('td', {}, num(l.count, u.total)))))));
      return;
    }
    const s = await api('series', { ...common, reverse: st.bidir ? 1 : '', previous: st.prev }, signal);
    drawSeries(graphEl, s, st, nav);
    replace(info, `${s.points} points of ${scale(s.step_seconds, 's')} · ${s.distinct.toLocaleString('en-US')} distinct keys · drag across the graph to zoom, ← → to move`);
    replace(tableEl, seriesTable(s, st));
  } catch (e) {
    if (e.name === 'AbortError') return;
    showFilterError(errEl, e);
  }
}

function drawSeries(el, s, st, nav) {
  const percent = st.graph === 'percent';
  const stacked = st.graph !== 'lines';
  const n = s.points;
  const totals = s.total.values;
  const norm = (vals) => (percent ? vals.map((v, i) => (totals[i] ? (v * 100) / totals[i] : 0)) : vals);
  const lines = s.lines.map((l, i) => ({ name: l.name, color: l.other ? '#999999' : palette[i % palette.length], values: norm(l.values), stack: stacked ? 'f' : undefined, area: stacked }));
  if (s.reverse) {
    const rt = s.reverse.reduce((acc, l) => acc.map((v, i) => v + l.values[i]), new Array(n).fill(0));
    s.reverse.forEach((l, i) => lines.push({ name: s.lines[i] ? s.lines[i].name : l.name, color: lines[i] ? lines[i].color : '#999999',
      values: percent ? l.values.map((v, k) => (rt[k] ? (v * 100) / rt[k] : 0)) : l.values, stack: stacked ? 'r' : undefined, area: stacked, negative: true }));
  }
  if (s.previous && !percent) {
    lines.push({ name: `Previous ${{ '1h': 'hour', '1d': 'day', '1w': 'week' }[st.prev]}`, color: '#888888', values: s.previous.values, dashed: true });
  }
  timeChart(el, { lines, start: Date.parse(s.start), step: s.step_seconds * 1000, rate: units[st.unit].rate, percent },
    (a, b) => nav(absolute(st, a, b)));
}

function seriesTable(s, st) {
  const u = units[st.unit];
  const rows = [];
  const row = (l, kind, color) => {
    const f = l.filter === undefined ? null : combine(st.filter, l.filter);
    const fst = f === null ? null : { ...st, view: 'flows', filter: kind === 'reverse' ? null : f, order: 'bytes', offset: 0, limit: 50, pair: false };
    return h('tr', { class: kind, 'data-name': l.name },
      h('td', {}, color ? h('span', { class: 'swatch', 'data-color': color }) : null),
      h('td', { class: 'name' }, kind === 'reverse' ? `↩ ${l.name}` : l.name),
      ['min', 'avg', 'p95', 'max', 'last'].map((k) => h('td', { 'data-stat': k }, num(l.stats[k], u.rate))),
      h('td', { 'data-stat': 'total' }, num(l.stats.total, u.total)),
      h('td', {}, fst && fst.filter !== null ? h('a', { href: url(fst), 'data-nav': 'flows', class: 'flows-link' }, 'flows') : ''));
  };
  s.lines.forEach((l, i) => rows.push(row(l, l.other ? 'other' : 'line', l.other ? '#999999' : palette[i % palette.length])));
  if (s.reverse) s.reverse.forEach((l, i) => rows.push(row({ ...l, name: s.lines[i] ? s.lines[i].name : l.name, filter: undefined }, 'reverse', null)));
  if (s.previous) rows.push(row({ ...s.previous, filter: undefined }, 'previous', '#888888'));
  rows.push(row({ ...s.total, name: 'Total', filter: s.total.filter }, 'total', null));
  const exportCSV = () => {
    const head = ['name', ...s.dims, `min_${u.rate}`, `avg_${u.rate}`, `p95_${u.rate}`, `max_${u.rate}`, `last_${u.rate}`, `total_${u.total}`];
    const lines = s.lines.map((l) => [l.name, ...s.dims.map((_, i) => (l.key ? l.key[i] : 'Other')),
      l.stats.min, l.stats.avg, l.stats.p95, l.stats.max, l.stats.last, l.stats.total].map((v) => csvField(String(v))).join(','));
    download('kflow-series.csv', 'text/csv', [head.join(','), ...lines].join('\n') + '\n');
  };
  const exportJSON = () => download('kflow-series.json', 'application/json', JSON.stringify({
    start: s.start, step_seconds: s.step_seconds, unit: s.unit, dims: s.dims,
    lines: s.lines.map((l) => ({ name: l.name, key: l.key, other: l.other, filter: l.filter, stats: l.stats })),
    total: s.total.stats,
  }, null, 2));
  for (const sw of rows.map((r) => r.querySelector('.swatch')).filter(Boolean)) sw.style.background = sw.dataset.color;
  return h('div', {},
    h('div', { class: 'row' }, h('button', { type: 'button', id: 'csv', onclick: exportCSV }, 'CSV'), h('button', { type: 'button', id: 'json', onclick: exportJSON }, 'JSON')),
    h('table', { class: 'grid', id: 'series-table' },
      h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', {}, 'series'), ['min', 'avg', 'p95', 'max', 'last'].map((k) => h('th', {}, `${k} ${u.rate}`)), h('th', {}, `total ${u.total}`), h('th', {}, ''))),
      h('tbody', {}, rows)));
}
