// PNG downloads. A chart drawn by uPlot is already a canvas; funnels and
// retention heat maps are HTML, so they are drawn again here on a canvas of
// their own, at twice the pixel density, with the numbers printed on them
// (an image pasted into a slide must stand without the page around it).

import { download } from './dom';

const SCALE = 2;
const FONT = '13px system-ui, sans-serif';
const INK = '#1d2330';
const MUTED = '#5b6475';
const ACCENT = '#3b6fd8';

function canvas(width: number, height: number): [HTMLCanvasElement, CanvasRenderingContext2D] {
  const c = document.createElement('canvas');
  c.width = width * SCALE;
  c.height = height * SCALE;
  const g = c.getContext('2d');
  if (!g) throw new Error('this browser cannot draw on a canvas');
  g.scale(SCALE, SCALE);
  g.fillStyle = '#fff';
  g.fillRect(0, 0, width, height);
  g.font = FONT;
  g.textBaseline = 'middle';
  return [c, g];
}

function save(c: HTMLCanvasElement, name: string): void {
  c.toBlob((blob) => blob && download(name, blob), 'image/png');
}

function fitted(g: CanvasRenderingContext2D, text: string, width: number): string {
  if (g.measureText(text).width <= width) return text;
  let cut = text;
  while (cut.length > 1 && g.measureText(`${cut}…`).width > width) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/** The first canvas inside `container` (a uPlot chart) as a PNG file. */
export function downloadChart(container: HTMLElement, name: string): void {
  const chart = container.querySelector('canvas');
  if (chart) save(chart, name);
}

export interface FunnelBar { event: string; count: number; conversion_from_start: number }

/** A funnel as vertical bars, each labelled with its step, count and conversion. */
export function downloadFunnel(title: string, steps: FunnelBar[], name: string): void {
  const column = 150;
  const width = Math.max(360, 40 + steps.length * column);
  const [c, g] = canvas(width, 340);
  g.fillStyle = INK;
  g.fillText(fitted(g, title, width - 40), 20, 20);
  const top = Math.max(1, steps[0]?.count ?? 1);
  steps.forEach((step, i) => {
    const x = 20 + i * column;
    const height = Math.max(2, (step.count / top) * 220);
    g.fillStyle = ACCENT;
    g.fillRect(x, 260 - height, column - 30, height);
    g.fillStyle = INK;
    g.fillText(fitted(g, `${i + 1}. ${step.event}`, column - 10), x, 280);
    g.fillStyle = MUTED;
    g.fillText(`${step.count.toLocaleString('en')} · ${(step.conversion_from_start * 100).toFixed(1)}%`, x, 300);
  });
  save(c, name);
}

export interface HeatRow { label: string; size: number; counts: number[] }

/** A retention table as a heat map: one row per cohort, one cell per period. */
export function downloadHeatmap(title: string, unit: string, rows: HeatRow[], name: string): void {
  const periods = Math.max(0, ...rows.map((r) => r.counts.length));
  const [labelWidth, sizeWidth, cell, line] = [110, 70, 56, 24];
  const width = Math.max(360, 20 + labelWidth + sizeWidth + periods * cell + 20);
  const [c, g] = canvas(width, 60 + (rows.length + 1) * line + 20);
  g.fillStyle = INK;
  g.fillText(fitted(g, title, width - 40), 20, 20);
  const y0 = 50;
  g.fillStyle = MUTED;
  g.fillText('Cohort', 20, y0);
  g.fillText('People', 20 + labelWidth, y0);
  for (let k = 0; k < periods; k++) g.fillText(`${unit} ${k}`, 20 + labelWidth + sizeWidth + k * cell + 4, y0);
  rows.forEach((row, r) => {
    const y = y0 + (r + 1) * line;
    g.fillStyle = INK;
    g.fillText(row.label, 20, y);
    g.fillText(row.size.toLocaleString('en'), 20 + labelWidth, y);
    row.counts.forEach((n, k) => {
      const share = row.size ? n / row.size : 0;
      const x = 20 + labelWidth + sizeWidth + k * cell;
      g.fillStyle = `rgba(59, 111, 216, ${(0.06 + share * 0.6).toFixed(2)})`;
      g.fillRect(x, y - line / 2 + 1, cell - 2, line - 2);
      g.fillStyle = INK;
      g.fillText(`${(share * 100).toFixed(0)}%`, x + 6, y);
    });
  });
  save(c, name);
}

export interface BarRow { label: string; value: number }

/** Ranked rows (flow paths) as horizontal bars with their labels and counts. */
export function downloadRanking(title: string, rows: BarRow[], name: string): void {
  const [labelWidth, barWidth, line] = [420, 300, 24];
  const width = 20 + labelWidth + barWidth + 90;
  const [c, g] = canvas(width, 50 + rows.length * line + 20);
  g.fillStyle = INK;
  g.fillText(fitted(g, title, width - 40), 20, 20);
  const top = Math.max(1, ...rows.map((r) => r.value));
  rows.forEach((row, i) => {
    const y = 50 + i * line;
    g.fillStyle = INK;
    g.fillText(fitted(g, row.label, labelWidth - 10), 20, y);
    g.fillStyle = ACCENT;
    g.fillRect(20 + labelWidth, y - line / 2 + 3, Math.max(2, (row.value / top) * barWidth), line - 6);
    g.fillStyle = MUTED;
    g.fillText(row.value.toLocaleString('en'), 20 + labelWidth + barWidth + 8, y);
  });
  save(c, name);
}
