// SPDX-License-Identifier: Apache-2.0
// Home: totals of the last hour and day, the traffic of the day, the top
// talkers, ports and protocols, and the health of each exporter.
import { api } from '../api.js';
import { timeChart, palette } from '../chart.js';
import { h, replace } from '../dom.js';
import { num, units } from '../format.js';
import { absolute, parse, url } from '../state.js';

function card(title, body) {
  return h('section', { class: 'card' }, h('h2', {}, title), body);
}

function totals(title, s, seconds) {
  const t = s.total;
  return card(title, h('dl', { class: 'totals' },
    h('dt', {}, 'flows'), h('dd', {}, num(t.flows)),
    h('dt', {}, 'packets'), h('dd', {}, num(t.packets)),
    h('dt', {}, 'bytes'), h('dd', {}, num(t.bytes, 'B')),
    h('dt', {}, 'average'), h('dd', {}, num(Math.round((t.bytes * 8) / seconds), 'bps'))));
}

// flowsLink is a link to the flows of the last day matching filter.
function flowsLink(filter, text) {
  const st = { ...parse(new URL('/flows', window.location.href)), last: '24h', filter, order: 'bytes' };
  return h('a', { href: url(st), 'data-nav': 'flows' }, text);
}

function topTable(stat, filterOf) {
  return h('table', { class: 'grid' },
    h('thead', {}, h('tr', {}, h('th', {}, stat.element), h('th', {}, 'bytes'), h('th', {}, 'packets'), h('th', {}, 'flows'), h('th', {}, '%'))),
    h('tbody', {}, stat.top.map((e) => h('tr', {},
      h('td', {}, filterOf(e.value) ? flowsLink(filterOf(e.value), e.value) : e.value),
      h('td', {}, num(e.bytes, 'B')), h('td', {}, num(e.packets)), h('td', {}, num(e.flows)),
      h('td', { class: 'pct' }, `${e.bytes_pct.toFixed(1)}`)))));
}

const filters = {
  srcip: (v) => (v === 'local' ? '' : `src ip ${v}`),
  dstip: (v) => (v === 'local' ? '' : `dst ip ${v}`),
  dstport: (v) => `dst port ${v}`,
  proto: (v) => `proto ${v}`,
};

export async function render(root, st, nav, signal) {
  const hour = h('div', { class: 'card-slot' });
  const day = h('div', { class: 'card-slot' });
  const graph = h('div', { class: 'chart', id: 'home-chart' });
  const tops = h('div', { class: 'tops' });
  const health = h('div', {});
  replace(root, h('div', { class: 'home' },
    h('div', { class: 'cards' }, hour, day),
    card('Traffic, last 24 hours, by protocol', graph),
    tops,
    card('Exporters', health)));
  const [sh, sd, series, stats, all] = await Promise.all([
    api('summary', { last: '1h' }, signal),
    api('summary', { last: '24h' }, signal),
    api('series', { last: '24h', dims: 'proto', top: 5, unit: 'l3bps' }, signal),
    api('stats', { last: '24h', top: 10, stat: ['srcip/bytes', 'dstip/bytes', 'dstport/bytes', 'proto/bytes'] }, signal),
    api('summary', {}, signal),
  ]);
  replace(hour, totals('Last hour', sh, 3600));
  replace(day, totals('Last 24 hours', sd, 86400));
  const step = series.step_seconds * 1000;
  timeChart(graph, {
    lines: series.lines.map((l, i) => ({ name: l.other ? 'Other' : `proto ${l.name}`, color: palette[i % palette.length], values: l.values, stack: 'f', area: true })),
    start: Date.parse(series.start), step, rate: units.l3bps.rate,
  }, (a, b) => nav(absolute({ ...st, view: 'visualize', dims: 'proto' }, a, b)));
  const titles = { srcip: 'Top sources', dstip: 'Top destinations', dstport: 'Top ports', proto: 'Protocols' };
  replace(tops, stats.stats.map((s) => card(titles[s.element], topTable(s, filters[s.element]))));
  // What each exporter said about itself (options records kept in the
  // files): the packets it ignored, its interfaces' names.
  const reports = new Map((all.reports || []).map((r) => [`${r.addr}/${r.observation_domain}`, r]));
  const reportOf = (x) => reports.get(`${x.addr}/${x.observation_domain}`);
  const ifNames = (r) => (r && r.interfaces ? Object.entries(r.interfaces).map(([i, n]) => `${i} ${n}`).join(', ') : '');
  replace(health, h('table', { class: 'grid' },
    h('thead', {}, h('tr', {}, ['exporter', 'domain', 'records', 'packets', 'bytes', 'sequence failures', 'ignored packets', 'ignored bytes', 'interfaces'].map((t) => h('th', {}, t)))),
    h('tbody', {}, all.exporters.map((x) => {
      const r = reportOf(x);
      const stats = r && r.has_stats;
      return h('tr', { class: x.sequence_failures > 0 || (stats && r.ignored_packets > 0) ? 'warn' : '' },
        h('td', {}, x.addr === 'local' ? x.addr : flowsLink(`exporter ${x.addr}`, x.addr)),
        h('td', {}, String(x.observation_domain)), h('td', {}, num(x.flows)), h('td', {}, num(x.packets)),
        h('td', {}, num(x.bytes, 'B')), h('td', {}, num(x.sequence_failures)),
        h('td', {}, stats ? num(r.ignored_packets) : '-'), h('td', {}, stats ? num(r.ignored_octets, 'B') : '-'),
        h('td', {}, ifNames(r)));
    }))),
  h('p', { class: 'note' }, `All flow files: ${all.total.flows.toLocaleString('en-US')} records. `,
    'Ignored packets and bytes are what each exporter said it could not put in a flow, totals up to its last report in the files (- when it sent no statistics); interfaces as the exporters named them.'));
}
