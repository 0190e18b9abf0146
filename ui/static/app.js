// Arca's live page: the daemon pushes the whole actor tree over
// server-sent events (GET /events) after every change; this renders it.
// EventSource reconnects by itself if the daemon goes away.
'use strict';

const STEPS = [
  ['boot', 'bootMs'], ['agent', 'agentMs'], ['setup', 'setupMs'],
  ['network', 'networkMs'], ['process', 'processMs'],
];
const DONE = new Set(['Pull complete', 'Already exists', 'Download complete']);

// el builds an element; text goes in as text, never as HTML.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'style') e.style.cssText = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function walk(node, fn) {
  if (!node) return;
  fn(node);
  for (const c of node.children || []) walk(c, fn);
}

function leaf(path) {
  const i = path.lastIndexOf('/');
  return i < 0 ? path : path.slice(i + 1);
}

function ms(v) { return v >= 1000 ? (v / 1000).toFixed(2) + ' s' : Math.round(v) + ' ms'; }

function bytes(n) {
  if (!n) return '0 B';
  const u = ['B', 'kB', 'MB', 'GB'];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return n.toFixed(i ? 1 : 0) + ' ' + u[i];
}

function badge(state) {
  const word = (state || '').split(' ')[0];
  return el('span', { class: 'badge state-' + word }, state || '?');
}

function timing(t, scale) {
  if (!t) return el('span', { class: 'muted' }, 'not started yet');
  const bar = el('div', { class: 'bar', title: 'total ' + ms(t.totalMs) });
  for (const [name, key] of STEPS) {
    const v = t[key] || 0;
    bar.append(el('span', {
      class: 'step-' + name,
      style: 'width:' + (100 * v / scale).toFixed(2) + '%',
      title: name + ' ' + ms(v),
    }));
  }
  return el('div', { class: 'timing' }, bar, el('span', { class: 'total' }, ms(t.totalMs)));
}

function renderContainers(containers) {
  const rows = document.getElementById('container-rows');
  const scale = Math.max(1, ...containers.map(c => (c.lastStart && c.lastStart.totalMs) || 0));
  rows.replaceChildren(...containers.map(c => {
    const d = c.detail || {};
    const id = leaf(c.path);
    let restarts = String(d.restartCount || 0);
    if (c.restarts) restarts += ' (actor ' + c.restarts + ')';
    let state = badge(c.state);
    if (c.state === 'exited') state = el('span', {}, state, el('span', { class: 'muted' }, ' code ' + (d.exitCode || 0)));
    return el('tr', { class: 'container', 'data-id': id, 'data-name': d.name || id, 'data-state': c.state },
      el('td', {}, el('span', { class: 'name' }, d.name || id), el('span', { class: 'id' }, id.slice(0, 12))),
      el('td', { class: 'image' }, d.image || ''),
      el('td', { class: 'state' }, state),
      el('td', { class: 'restarts' }, restarts),
      el('td', {}, timing(c.lastStart, scale)));
  }));
  document.getElementById('no-containers').hidden = containers.length > 0;
}

function renderNetworks(networks) {
  const list = document.getElementById('network-list');
  list.replaceChildren(...networks.map(n => {
    const d = n.detail || {};
    const members = d.members || [];
    return el('div', { class: 'network', 'data-name': d.name || leaf(n.path) },
      el('div', {}, el('span', { class: 'name' }, d.name || leaf(n.path)), ' ',
        el('span', { class: 'muted' }, (d.subnet || '') + ' · ' + members.length + (members.length === 1 ? ' member' : ' members'))),
      el('div', {}, ...members.map(m => el('span', { class: 'chip', 'data-id': m.id }, m.name, m.ip ? el('span', { class: 'ip' }, m.ip) : null))));
  }));
}

function renderPulls(pulls) {
  const list = document.getElementById('pull-list');
  list.replaceChildren(...pulls.map(p => {
    const d = p.detail || {};
    const layers = d.layers || [];
    let cur = 0, tot = 0;
    for (const l of layers) { cur += DONE.has(l.status) ? l.total : l.current; tot += l.total; }
    return el('div', { class: 'pull', 'data-ref': d.ref || '' },
      el('div', {}, el('strong', {}, d.ref || leaf(p.path)), ' ', badge(p.state.split(' ')[0]),
        tot ? el('span', { class: 'muted' }, ' ' + bytes(cur) + ' of ' + bytes(tot)) : null),
      ...layers.map(l => {
        const done = DONE.has(l.status);
        const pct = done ? 100 : (l.total ? 100 * l.current / l.total : 0);
        return el('div', { class: 'layer' },
          el('span', { class: 'id' }, l.id.slice(0, 12)),
          el('span', {}, l.status || ''),
          el('div', { class: 'progress' + (done ? ' done' : '') }, el('span', { style: 'width:' + pct.toFixed(1) + '%' })),
          el('span', { class: 'muted' }, l.total ? bytes(l.current) + ' / ' + bytes(l.total) : ''));
      }));
  }));
  document.getElementById('no-pulls').hidden = pulls.length > 0;
}

function treeItem(n) {
  const li = el('li', { 'data-path': n.path },
    el('span', {}, leaf(n.path) || 'system'), ' ',
    el('span', { class: 'kind' }, '[' + n.kind + ']'), ' ',
    el('span', {}, n.state),
    n.detail && n.detail.kernel ? el('span', { class: 'muted' }, ' guest kernel ' + n.detail.kernel) : null,
    n.restarts ? el('span', { class: 'restarts' }, ' restarts: ' + n.restarts) : null);
  if (n.children && n.children.length) li.append(el('ul', {}, ...n.children.map(treeItem)));
  return li;
}

function render(root) {
  const containers = [], networks = [], pulls = [];
  walk(root, n => {
    if (n.kind === 'container') containers.push(n);
    else if (n.kind === 'network') networks.push(n);
    else if (n.kind === 'image-pull') pulls.push(n);
  });
  const byName = (a, b) => ((a.detail && a.detail.name) || a.path).localeCompare((b.detail && b.detail.name) || b.path);
  containers.sort(byName);
  networks.sort(byName);
  renderContainers(containers);
  renderNetworks(networks);
  renderPulls(pulls);
  document.getElementById('tree').replaceChildren(treeItem(root));
  const running = containers.filter(c => c.state === 'running').length;
  document.getElementById('summary').textContent =
    containers.length + ' containers, ' + running + ' running · ' + networks.length + ' networks';
}

function setConn(up) {
  const c = document.getElementById('conn');
  c.className = 'conn ' + (up ? 'up' : 'down');
  c.textContent = up ? 'live' : 'reconnecting…';
}

function legend() {
  document.getElementById('legend').replaceChildren(...STEPS.map(([name]) =>
    el('span', {}, el('i', { class: 'step-' + name }), name)));
}

legend();
const events = new EventSource('events');
events.addEventListener('tree', e => { setConn(true); render(JSON.parse(e.data)); });
events.addEventListener('error', () => setConn(false));
