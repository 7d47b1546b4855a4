// SPDX-License-Identifier: Apache-2.0
// The whole state of the page lives in its URL, so a view can be shared
// and the back button works. The schema is versioned (v=1): a later kflow
// reads every v=1 URL the same way (fields are only added, with defaults).

export const SCHEMA = '1';

export const views = ['home', 'visualize', 'flows'];

export const presets = [
  ['15m', '15 min'], ['1h', '1 hour'], ['6h', '6 hours'], ['24h', '24 hours'], ['7d', '7 days'], ['30d', '30 days'],
];

const defaults = {
  last: '1h', from: '', to: '', filter: '',
  // visualize
  unit: 'l3bps', dims: 'srcip', top: 10, rank: 'avg', graph: 'stacked', prev: '', bidir: false,
  // flows
  order: '', offset: 0, limit: 50, pair: false,
};

// parse reads a location into a state.
export function parse(loc) {
  const path = loc.pathname.replace(/^\/+|\/+$/g, '');
  const view = views.includes(path) ? path : 'home';
  const q = new URLSearchParams(loc.search);
  const st = { view, ...defaults };
  const str = (k) => (q.has(k) ? q.get(k) : st[k]);
  const int = (k, lo, hi) => {
    const v = Number.parseInt(q.get(k), 10);
    return Number.isInteger(v) && v >= lo && v <= hi ? v : st[k];
  };
  if (q.has('from') && q.has('to')) {
    st.from = q.get('from');
    st.to = q.get('to');
    st.last = '';
  } else {
    st.last = str('last');
  }
  st.filter = str('filter');
  st.unit = ['l3bps', 'l2bps', 'pps', 'fps'].includes(q.get('unit')) ? q.get('unit') : st.unit;
  st.dims = str('dims');
  st.top = int('top', 1, 50);
  st.rank = ['avg', 'peak', 'last'].includes(q.get('rank')) ? q.get('rank') : st.rank;
  st.graph = ['stacked', 'lines', 'percent', 'sankey'].includes(q.get('graph')) ? q.get('graph') : st.graph;
  st.prev = ['1h', '1d', '1w'].includes(q.get('prev')) ? q.get('prev') : '';
  st.bidir = q.get('bidir') === '1';
  st.order = str('order');
  st.offset = int('offset', 0, 100000);
  st.limit = int('limit', 1, 1000);
  st.pair = q.get('pair') === '1';
  return st;
}

// Which parameters each view keeps in its URL.
const keep = {
  home: [],
  visualize: ['last', 'from', 'to', 'filter', 'unit', 'dims', 'top', 'rank', 'graph', 'prev', 'bidir'],
  flows: ['last', 'from', 'to', 'filter', 'order', 'offset', 'limit', 'pair'],
};

// url writes a state as a URL (path and query), leaving out defaults.
export function url(st) {
  const q = new URLSearchParams();
  q.set('v', SCHEMA);
  for (const k of keep[st.view]) {
    let v = st[k];
    if (k === 'last' && !st.last) continue;
    if ((k === 'from' || k === 'to') && st.last) continue;
    if (typeof v === 'boolean') v = v ? '1' : '';
    if (v === '' || v === undefined || (k !== 'last' && v === defaults[k])) continue;
    q.set(k, String(v));
  }
  const path = st.view === 'home' ? '/' : `/${st.view}`;
  return st.view === 'home' ? path : `${path}?${q}`;
}

// durationMs parses 15m, 1h, 24h, 7d, 2w.
export function durationMs(s) {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d|w)$/.exec(s || '');
  if (!m) return 0;
  return Number(m[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3 }[m[2]];
}

// span returns a state's window as [from, to] in ms (now for "last").
export function span(st, now = Date.now()) {
  if (st.last) {
    const to = Math.floor(now / 1000) * 1000;
    return [to - durationMs(st.last), to];
  }
  return [Date.parse(st.from), Date.parse(st.to)];
}

// absolute returns st with the window [from, to] (ms) as RFC 3339 times.
export function absolute(st, from, to) {
  const iso = (t) => new Date(Math.round(t / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  return { ...st, last: '', from: iso(from), to: iso(to), offset: 0 };
}
