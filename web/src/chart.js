// SPDX-License-Identifier: Apache-2.0
// Graphs with ECharts, imported piece by piece so the bundle holds only
// the line and sankey charts and the canvas renderer. Tooltips are built
// as DOM nodes with text, never as HTML strings.
import * as echarts from 'echarts/core';
import { LineChart, SankeyChart } from 'echarts/charts';
import { GridComponent, LegendComponent, TooltipComponent } from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';
import { h } from './dom.js';
import { exact, localTime, scale, utcTime } from './format.js';

echarts.use([LineChart, SankeyChart, GridComponent, LegendComponent, TooltipComponent, CanvasRenderer]);

const dark = () => window.matchMedia('(prefers-color-scheme: dark)').matches;

export const palette = ['#5470c6', '#91cc75', '#fac858', '#ee6666', '#73c0de', '#3ba272', '#fc8452', '#9a60b4',
  '#ea7ccc', '#2f4554', '#61a0a8', '#d48265', '#749f83', '#ca8622', '#bda29a'];

function init(el) {
  const c = echarts.init(el, dark() ? 'dark' : null, { renderer: 'canvas' });
  const ro = new ResizeObserver(() => c.resize());
  ro.observe(el);
  el.chartDispose = () => {
    ro.disconnect();
    c.dispose();
  };
  return c;
}

// timeChart draws lines over time. lines: [{name, color, values, dashed,
// stack, area, negative}]; start (ms), step (ms); rate names the unit.
// Dragging across the plot calls onZoom(fromMs, toMs).
export function timeChart(el, { lines, start, step, rate, percent }, onZoom) {
  const c = init(el);
  const series = lines.map((l) => ({
    name: l.name,
    type: 'line',
    stack: l.stack,
    symbol: 'none',
    sampling: 'lttb',
    lineStyle: { width: l.area ? 0.5 : 1.5, type: l.dashed ? 'dashed' : 'solid', color: l.color },
    itemStyle: { color: l.color },
    areaStyle: l.area ? { opacity: 0.75, color: l.color } : undefined,
    emphasis: { focus: 'series' },
    data: l.values.map((v, i) => [start + i * step, l.negative ? -v : v]),
  }));
  const fmt = (v) => (percent ? `${Math.abs(v).toFixed(1)} %` : scale(Math.abs(v), rate));
  c.setOption({
    backgroundColor: 'transparent',
    animation: false,
    color: palette,
    grid: { left: 70, right: 20, top: 36, bottom: 30 },
    legend: { type: 'scroll', top: 0, data: lines.filter((l) => !l.negative).map((l) => l.name) },
    tooltip: {
      trigger: 'axis',
      confine: true,
      formatter: (params) => {
        const ps = Array.isArray(params) ? params : [params];
        if (!ps.length) return '';
        const t = ps[0].value[0];
        return h('div', { class: 'tip' },
          h('div', { class: 'tip-time', title: utcTime(t) }, localTime(t), ` (${utcTime(t)})`),
          ps.map((p) => h('div', { class: 'tip-row' },
            h('span', { class: 'tip-name' }, p.seriesName, p.value[1] < 0 ? ' (reverse)' : ''),
            h('span', { class: 'tip-val', title: exact(Math.abs(p.value[1])) }, fmt(p.value[1])))));
      },
    },
    xAxis: { type: 'time', axisLabel: { hideOverlap: true } },
    yAxis: { type: 'value', max: percent ? 100 : undefined, axisLabel: { formatter: fmt } },
    series,
  });
  dragZoom(el, c, onZoom);
  return c;
}

// dragZoom selects a time range by dragging across the plot.
function dragZoom(el, c, onZoom) {
  const box = h('div', { class: 'zoom-box' });
  el.append(box);
  let x0 = null;
  const zr = c.getZr();
  zr.on('mousedown', (e) => {
    if (!c.containPixel('grid', [e.offsetX, e.offsetY])) return;
    x0 = e.offsetX;
    box.style.left = `${x0}px`;
    box.style.width = '0px';
    box.style.display = 'block';
  });
  zr.on('mousemove', (e) => {
    if (x0 === null) return;
    box.style.left = `${Math.min(x0, e.offsetX)}px`;
    box.style.width = `${Math.abs(e.offsetX - x0)}px`;
  });
  zr.on('mouseup', (e) => {
    if (x0 === null) return;
    const x1 = e.offsetX;
    box.style.display = 'none';
    const a = Math.min(x0, x1);
    const b = Math.max(x0, x1);
    x0 = null;
    if (b - a < 5) return;
    const ta = c.convertFromPixel({ xAxisIndex: 0 }, a);
    const tb = c.convertFromPixel({ xAxisIndex: 0 }, b);
    onZoom(ta, tb);
  });
}

// sankeyChart draws the API's sankey: nodes by id, labelled by value.
export function sankeyChart(el, sk, rate) {
  const c = init(el);
  const label = Object.fromEntries(sk.nodes.map((n) => [n.id, n.value]));
  c.setOption({
    backgroundColor: 'transparent',
    animation: false,
    color: palette,
    tooltip: {
      trigger: 'item',
      confine: true,
      formatter: (p) => {
        if (p.dataType === 'edge') {
          return h('div', { class: 'tip' }, `${label[p.data.source]} → ${label[p.data.target]}: `,
            h('span', { title: exact(p.data.value) }, scale(p.data.value, rate)));
        }
        return h('div', { class: 'tip' }, `${sk.dims[p.data.dim] || ''} ${label[p.data.name]}: `, scale(p.value, rate));
      },
    },
    series: [{
      type: 'sankey',
      left: 10, right: 120, top: 10, bottom: 10,
      emphasis: { focus: 'adjacency' },
      nodeAlign: 'left',
      data: sk.nodes.map((n) => ({ name: n.id, dim: n.dim })),
      links: sk.links.map((l) => ({ source: l.source, target: l.target, value: l.value })),
      label: { formatter: (p) => label[p.name] },
      lineStyle: { color: 'gradient', curveness: 0.5 },
    }],
  });
  return c;
}

// dispose releases the chart drawn in el, if any.
export function dispose(el) {
  if (el && el.chartDispose) el.chartDispose();
}
