// SPDX-License-Identifier: Apache-2.0
// Numbers scaled to K, M, G with the exact value on hover; times in the
// browser's zone with UTC on hover.
import { h } from './dom.js';

const prefixes = ['', 'K', 'M', 'G', 'T', 'P', 'E'];

// scale prints v with an SI prefix (1000s): 1234567 → "1.23 M".
export function scale(v, suffix = '') {
  if (v === null || v === undefined || Number.isNaN(v)) return '';
  let i = 0;
  let x = Math.abs(v);
  while (x >= 1000 && i < prefixes.length - 1) {
    x /= 1000;
    i++;
  }
  const digits = x >= 100 || Number.isInteger(x) && i === 0 ? 0 : x >= 10 ? 1 : 2;
  const s = (v < 0 ? '-' : '') + x.toFixed(digits);
  const unit = prefixes[i] + suffix;
  return unit ? `${s} ${unit}` : s;
}

// exact prints v in full with thousands separators.
export function exact(v) {
  if (typeof v !== 'number') return String(v);
  return Number.isInteger(v) ? v.toLocaleString('en-US') : v.toLocaleString('en-US', { maximumFractionDigits: 6 });
}

// num is a cell: scaled text, the exact value on hover and in data-value.
export function num(v, suffix = '') {
  return h('span', { class: 'num', title: `${exact(v)}${suffix ? ' ' + suffix : ''}`, 'data-value': String(v) }, scale(v, suffix));
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

// localTime prints a time in the browser's zone.
export function localTime(t, seconds = true) {
  const d = t instanceof Date ? t : new Date(t);
  if (Number.isNaN(d.getTime())) return '';
  const s = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return seconds ? `${s}:${pad(d.getSeconds())}` : s;
}

// utcTime prints a time in UTC, RFC 3339 with milliseconds.
export function utcTime(t) {
  const d = t instanceof Date ? t : new Date(t);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

// time is a cell: local time, UTC on hover.
export function time(t) {
  if (!t) return h('span', {}, '');
  return h('time', { datetime: utcTime(t), title: `${utcTime(t)} (UTC)` }, localTime(t));
}

// duration prints milliseconds for people.
export function duration(ms) {
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

// Units of series: what a value is per second, and what a total counts.
export const units = {
  l3bps: { label: 'L3 bits/s', rate: 'bps', total: 'bit' },
  l2bps: { label: 'L2 bits/s', rate: 'bps', total: 'bit' },
  pps: { label: 'packets/s', rate: 'pps', total: 'packets' },
  fps: { label: 'flows/s', rate: 'flows/s', total: 'flows' },
};
