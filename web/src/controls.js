// SPDX-License-Identifier: Apache-2.0
// Controls shared by the views: the time range and the filter box.
import { api } from './api.js';
import { h, replace } from './dom.js';
import { localTime, utcTime } from './format.js';
import { absolute, presets, span } from './state.js';

// timeControls: presets, ← and → to shift by one period, the range shown.
export function timeControls(st, nav) {
  const [from, to] = span(st);
  const shift = (dir) => {
    const len = to - from;
    nav(absolute(st, from + dir * len, to + dir * len));
  };
  const select = h('select', { 'aria-label': 'time range', id: 'range', onchange: (e) => nav({ ...st, last: e.target.value, from: '', to: '', offset: 0 }) },
    presets.map(([v, label]) => h('option', { value: v, selected: st.last === v }, `last ${label}`)),
    st.last ? null : h('option', { value: '', selected: true, disabled: true }, 'custom'));
  return h('div', { class: 'time' },
    h('button', { type: 'button', title: 'earlier by one period (←)', id: 'earlier', onclick: () => shift(-1) }, '←'),
    select,
    h('button', { type: 'button', title: 'later by one period (→)', id: 'later', onclick: () => shift(1) }, '→'),
    h('span', { class: 'range', title: `${utcTime(from)} – ${utcTime(to)} (UTC)` }, `${localTime(from, false)} – ${localTime(to, false)}`));
}

// keys binds ← and → (outside text fields) to the time buttons.
export function bindArrows(root) {
  const onKey = (e) => {
    if (e.target.closest('input, select, textarea') || e.altKey || e.ctrlKey || e.metaKey) return;
    const id = { ArrowLeft: 'earlier', ArrowRight: 'later' }[e.key];
    const b = id && root.querySelector(`#${id}`);
    if (b) {
      e.preventDefault();
      b.click();
    }
  };
  document.addEventListener('keydown', onKey);
  return () => document.removeEventListener('keydown', onKey);
}

// filterBox: nfdump's filter language, checked as it is typed; a syntax
// error is shown under the box with the offending token marked.
export function filterBox(st, apply) {
  const input = h('input', { type: 'search', id: 'filter', class: 'filter', spellcheck: 'false', autocomplete: 'off',
    placeholder: 'nfdump filter: proto tcp and dst port 443, unit nginx, container ID', value: st.filter, 'aria-label': 'filter' });
  const err = h('div', { class: 'filter-error', id: 'filter-error', role: 'alert' });
  let seq = 0;
  const check = async () => {
    const n = ++seq;
    let res;
    try {
      res = await api('filter', { filter: input.value });
    } catch (e) {
      if (n === seq) showFilterError(err, e);
      return false;
    }
    if (n !== seq) return false;
    input.classList.toggle('bad', !res.valid);
    if (res.valid) replace(err);
    else showFilterError(err, { message: res.error.message, body: res.error });
    return res.valid;
  };
  let timer;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(check, 250);
  });
  const go = async () => {
    clearTimeout(timer);
    if (await check()) apply(input.value.trim());
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') go();
  });
  return h('div', { class: 'filter-box' },
    h('div', { class: 'filter-row' }, input, h('button', { type: 'button', id: 'apply', onclick: go }, 'Apply')),
    err);
}

// showFilterError writes an API error into el: for a filter error, the
// filter with its offending token marked.
export function showFilterError(el, e) {
  const b = e.body || {};
  if (typeof b.offset === 'number' && typeof b.filter === 'string') {
    const src = b.filter;
    const end = b.offset + Math.max((b.token || '').length, 0);
    replace(el,
      h('div', { class: 'msg' }, b.message),
      h('code', { class: 'caret' }, src.slice(0, b.offset), h('mark', {}, src.slice(b.offset, end) || ' '), src.slice(end)));
  } else {
    replace(el, h('div', { class: 'msg' }, e.message));
  }
}
