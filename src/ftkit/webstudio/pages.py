"""The studio's pages: plain HTML, one stylesheet and a little JavaScript (no CDN, no build step;
it works offline). Each page fetches the JSON API (app.py) and redraws every two seconds where
something can change; charts are inline SVG drawn by `chart()` below.
"""
from __future__ import annotations

import html
import json

CSS = """
*{box-sizing:border-box} body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:10px 20px;display:flex;gap:22px;align-items:center}
header a{color:#cfd6e4;text-decoration:none} header a.on,header a:hover{color:#fff} header b{margin-right:14px}
main{max-width:1100px;margin:18px auto;padding:0 16px} h1{font-size:22px;margin:4px 0 14px}
section{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:14px 16px;margin-bottom:14px}
label{display:block;margin:6px 0 2px;font-weight:600;font-size:13px} input,select,textarea{font:inherit;padding:5px 7px;
border:1px solid #b9c0cc;border-radius:5px;width:100%} .row{display:flex;gap:12px;flex-wrap:wrap}.row>div{flex:1;min-width:160px}
button{font:inherit;padding:6px 14px;border-radius:5px;border:1px solid #2d5be3;background:#2d5be3;color:#fff;cursor:pointer}
button.plain{background:#fff;color:#2d5be3} button.danger{border-color:#c0392b;background:#fff;color:#c0392b}
button:disabled{opacity:.5;cursor:default} table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:5px 8px;
border-bottom:1px solid #e5e8ee;font-size:14px} th{cursor:pointer;user-select:none;background:#f0f2f6}
.error{color:#b3261e;background:#fdecea;border:1px solid #f3b8b3;padding:6px 10px;border-radius:5px;margin:8px 0}
.ok{color:#1e7b34}.warn{color:#a15c00}.err{color:#b3261e}.skipped{color:#777} .muted{color:#687083;font-size:13px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;background:#e8ecf4}
.badge.running{background:#dbe8ff;color:#1f4fc2}.badge.finished{background:#dff3e4;color:#1e7b34}
.badge.failed{background:#fdecea;color:#b3261e}.badge.stopped{background:#fff2d6;color:#8a5a00}.badge.starting{background:#eef0ff;color:#4450a0}
.bar{height:10px;background:#e5e8ee;border-radius:5px;overflow:hidden}.bar>div{height:100%;background:#2d5be3}
.stages span{display:inline-block;margin-right:6px;padding:2px 10px;border-radius:12px;background:#eceff4;font-size:13px}
.stages span.done{background:#dff3e4}.stages span.now{background:#dbe8ff;font-weight:600}
.charts{display:flex;gap:14px;flex-wrap:wrap}.charts>div{flex:1;min-width:320px} svg text{font-size:11px;fill:#555}
pre{white-space:pre-wrap;background:#f0f2f6;padding:8px;border-radius:5px}
"""

JS = r"""
const $ = (s, el=document) => el.querySelector(s);
const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
async function api(path, opts={}) {
  const r = await fetch(path, opts); let body = {};
  try { body = await r.json(); } catch (e) {}
  if (!r.ok) throw new Error(body.error || body.detail || ('HTTP ' + r.status));
  return body;
}
function post(path, data) {
  return api(path, {method:'POST', headers:{'content-type':'application/json'}, body:JSON.stringify(data)});
}
function showError(el, err) { el.innerHTML = err ? '<div class="error">' + esc(err.message || err) + '</div>' : ''; }
function fmt(v, d=4) { return v === null || v === undefined ? '–' : (typeof v === 'number' ? v.toFixed(d) : esc(v)); }
function dur(s) { if (s === null || s === undefined) return '–'; s = Math.round(s);
  return s < 90 ? s + ' s' : s < 5400 ? (s/60).toFixed(1) + ' min' : (s/3600).toFixed(1) + ' h'; }
const COLORS = ['#2d5be3','#e3672d','#1e9e5a','#9b36c9','#c0392b','#00838f'];
function chart(el, series, title) {
  const W = 480, H = 230, L = 46, B = 28, T = 22, Rm = 10;
  const pts = series.flatMap(s => s.points);
  if (!pts.length) { el.innerHTML = '<div class="muted">' + esc(title) + ': no points yet</div>'; return; }
  const xs = pts.map(p => p[0]), ys = pts.map(p => p[1]);
  let x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (x1 === x0) x1 = x0 + 1; if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  const X = x => L + (x - x0) / (x1 - x0) * (W - L - Rm), Y = y => H - B - (y - y0) / (y1 - y0) * (H - B - T);
  let svg = `<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="${esc(title)}">`;
  svg += `<text x="${L}" y="14" style="font-weight:600;font-size:12px">${esc(title)}</text>`;
  for (let i = 0; i <= 4; i++) { const y = y0 + (y1 - y0) * i / 4;
    svg += `<line x1="${L}" x2="${W-Rm}" y1="${Y(y)}" y2="${Y(y)}" stroke="#eee"/><text x="${L-4}" y="${Y(y)+4}" text-anchor="end">${y.toPrecision(3)}</text>`; }
  svg += `<text x="${W-Rm}" y="${H-6}" text-anchor="end">step ${x1}</text><text x="${L}" y="${H-6}">${x0}</text>`;
  series.forEach((s, i) => { if (!s.points.length) return;
    const c = COLORS[i % COLORS.length], d = s.points.map((p, j) => (j ? 'L' : 'M') + X(p[0]).toFixed(1) + ' ' + Y(p[1]).toFixed(1)).join(' ');
    svg += `<path d="${d}" fill="none" stroke="${c}" stroke-width="2"/>`;
    if (s.points.length < 30) s.points.forEach(p => svg += `<circle cx="${X(p[0])}" cy="${Y(p[1])}" r="2.5" fill="${c}"/>`);
    svg += `<text x="${W-Rm}" y="${T + 12 + 13*i}" text-anchor="end" fill="${c}" class="legend">${esc(s.name)}</text>`; });
  el.innerHTML = svg + '</svg>';
}
"""


def layout(title: str, active: str, body: str, script: str = "") -> str:
    nav = "".join(f'<a href="{href}" class="{"on" if key == active else ""}">{label}</a>'
                  for key, href, label in (("new", "/new", "New run"), ("runs", "/runs", "Runs"), ("try", "/try", "Try it")))
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content='width=device-width'>"
            f"<title>{html.escape(title)} · ftkit studio</title><style>{CSS}</style></head><body>"
            f"<header><b>ftkit studio</b>{nav}</header><main>{body}</main><script>{JS}{script}</script></body></html>")


NEW_BODY = """
<h1>New run</h1>
<section><label for=file>1. Your data: upload a CSV, JSONL, Parquet or CoNLL file, or a zip of class folders (images, audio)</label>
<input type=file id=file name=file>
<label for=path>… or a file or folder on this machine</label><input id=path placeholder="/data/reviews.csv">
<p><button id=inspect>Inspect the data</button></p><div id=inspect-error></div><div id=look></div><div id=doctor></div></section>
<section id=setup hidden><label>2. Task and columns (detected; change them if they are wrong)</label>
<div class=row><div><label for=task>task</label><select id=task>
<option>text-classification</option><option>token-classification</option><option>image-classification</option>
<option>audio-classification</option><option>speech-recognition</option></select></div>
<div><label for=text_column>text column</label><input id=text_column></div>
<div><label for=label_column>label column</label><input id=label_column></div>
<div><label for=image_column>image column</label><input id=image_column></div>
<div><label for=audio_column>audio column</label><input id=audio_column></div></div>
<div class=row><div><label for=test>test file (optional; else a stratified split)</label><input id=test></div></div>
<label>3. Model</label><div class=row><div><label for=model>a named offline model</label><select id=model></select></div>
<div><label for=model_path>… or a local Hugging Face folder</label><input id=model_path></div></div>
<label>4. How</label><div class=row>
<div><label for=mode>mode</label><select id=mode><option value=auto>auto: all of it in a time budget</option>
<option value=fit>fit: one run with a strategy</option></select></div>
<div><label for=time_budget>time budget (auto)</label><input id=time_budget value=10m></div>
<div><label for=strategy>strategy (fit)</label><select id=strategy><option>full</option><option>lp-ft</option>
<option>lora</option><option>linear-probe</option><option>llrd</option><option>bitfit</option><option>freeze-bottom</option>
<option>gradual-unfreeze</option><option>frozen-encoder</option></select></div>
<div><label for=epochs>epochs (fit)</label><input id=epochs value=3></div></div>
<label for=settings>more settings, one per line, as with --set (optional; e.g. train.patience=5)</label>
<textarea id=settings rows=2 placeholder="train.label_smoothing=0.1"></textarea>
<p><button class=plain id=advise>Get advice (profiles a few real steps per strategy)</button></p>
<div id=advice-error></div><div id=advice></div>
<div class=row><div><label for=name>run name</label><input id=name></div></div>
<p><button id=start>Start</button></p><div id=start-error></div></section>
"""

NEW_JS = """
let seen = null, models = [];
api('/api/models').then(ms => { models = ms; showModels(''); });
function showModels(task) {  // the models made for the detected task first, the first of them chosen
  const fit = m => (m.tasks || []).includes(task), order = [...models.filter(fit), ...models.filter(m => !fit(m))];
  $('#model').innerHTML = order.map(m => `<option value="${esc(m.name)}">${esc(m.name)}${m.installed === false ? ' (not installed)' : ''} — ${esc(m.description || '')}</option>`).join('');
}
function fields() {
  const v = id => $('#' + id).value.trim();
  return {path: seen && seen.look.path, task: v('task'), text_column: v('text_column'), label_column: v('label_column'),
    image_column: v('image_column'), audio_column: v('audio_column'), test: v('test'), model: v('model_path') || v('model'),
    mode: v('mode'), time_budget: v('time_budget'), strategy: v('mode') === 'fit' ? v('strategy') : '',
    epochs: v('mode') === 'fit' ? v('epochs') : '', name: v('name'), settings: v('settings')};
}
$('#inspect').onclick = async () => {
  showError($('#inspect-error')); $('#inspect').disabled = true; $('#look').innerHTML = '<p class=muted>reading…</p>';
  try {
    const f = $('#file').files[0];
    if (f) { const fd = new FormData(); fd.append('file', f); seen = await api('/api/inspect', {method:'POST', body:fd}); }
    else seen = await post('/api/inspect', {path: $('#path').value.trim()});
    const L = seen.look;
    $('#look').innerHTML = `<p><b>${esc(L.task)}</b> · ${L.rows} rows · columns: ${L.columns.map(esc).join(', ')}</p>` +
      (L.preview.length ? '<table><tr>' + Object.keys(L.preview[0]).map(k => `<th>${esc(k)}</th>`).join('') + '</tr>' +
       L.preview.map(r => '<tr>' + Object.values(r).map(v => `<td>${esc(String(v).slice(0, 80))}</td>`).join('') + '</tr>').join('') + '</table>' : '');
    $('#doctor').innerHTML = '<h3>Data doctor</h3><table id=findings><tr><th>check</th><th>result</th><th>what to do</th></tr>' +
      seen.doctor.map(c => `<tr class="${c.severity === 'error' ? 'err' : c.severity}"><td>${esc(c.name)}</td><td>${esc(c.message)}</td><td>${esc(c.fix || '')}</td></tr>`).join('') + '</table>';
    for (const k of ['task','text_column','label_column','image_column','audio_column']) $('#' + k).value = L[k] || '';
    showModels(L.task);
    $('#name').value = $('#name').value || (L.path.split('/').pop().replace(/\\.[^.]*$/, '') + '-' + Date.now().toString(36).slice(-4)).replace(/[^A-Za-z0-9._-]/g, '-');
    $('#setup').hidden = false;
  } catch (e) { showError($('#inspect-error'), e); $('#look').innerHTML = ''; }
  $('#inspect').disabled = false;
};
$('#advise').onclick = async () => {
  showError($('#advice-error')); $('#advise').disabled = true; $('#advice').innerHTML = '<p class=muted>profiling…</p>';
  try {
    const f = fields(), a = await post('/api/advise', {...f, budget: f.time_budget});
    const r = a.recommendation;
    const head = {'fine-tune': 'Recommendation: fine-tune with ' + esc(r.strategy), 'linear-probe': 'Recommendation: a linear probe is enough',
                  "don't fine-tune": "Recommendation: don't fine-tune"}[r.action] || esc(r.action);
    $('#advice').innerHTML = `<p id=recommendation><b>${head}</b>${r.epochs ? ' (' + r.epochs + ' epochs)' : ''}</p><ul>` +
      r.reasons.map(x => `<li>${esc(x)}</li>`).join('') + '</ul><table><tr><th>strategy</th><th>est. total</th><th>est. memory</th><th>fits</th></tr>' +
      Object.entries(a.strategies).map(([n, s]) => `<tr><td>${esc(n)}</td><td>${s.error ? 'failed' : dur(s.total_seconds)}</td><td>${s.peak_memory_mb ? Math.round(s.peak_memory_mb) + ' MB' : '–'}</td><td>${esc(s.error || s.fits)}</td></tr>`).join('') + '</table>';
    if (r.strategy) { $('#strategy').value = r.strategy; }
  } catch (e) { showError($('#advice-error'), e); $('#advice').innerHTML = ''; }
  $('#advise').disabled = false;
};
$('#start').onclick = async () => {
  showError($('#start-error')); $('#start').disabled = true;
  try { const r = await post('/api/runs', fields()); location.href = '/runs/' + encodeURIComponent(r.name); }
  catch (e) { showError($('#start-error'), e); $('#start').disabled = false; }
};
"""


def new_run() -> str:
    return layout("New run", "new", NEW_BODY, NEW_JS)


RUNS_JS = """
let rows = [], key = 'started', desc = true;
const COLS = [['name','run'],['status','status'],['kind','kind'],['task','task'],['model','model'],['strategy','strategy'],['value','metric'],['seconds','time']];
function draw() {
  const q = $('#filter').value.toLowerCase();
  const shown = rows.filter(r => !q || [r.name, r.task, r.model, r.strategy, r.status].join(' ').toLowerCase().includes(q))
    .sort((a, b) => { const x = a[key] ?? '', y = b[key] ?? ''; return (x < y ? -1 : x > y ? 1 : 0) * (desc ? -1 : 1); });
  $('#runs').innerHTML = '<tr><th></th>' + COLS.map(([k, t]) => `<th data-key="${k}">${t}${k === key ? (desc ? ' ▾' : ' ▴') : ''}</th>`).join('') + '<th></th></tr>' +
    shown.map(r => `<tr data-run="${esc(r.name)}"><td><input type=checkbox class=pick value="${esc(r.name)}" aria-label="select ${esc(r.name)}"></td>
      <td><a href="/runs/${encodeURIComponent(r.name)}">${esc(r.name)}</a></td><td><span class="badge ${r.status}">${r.status}</span></td>
      <td>${esc(r.kind)}</td><td>${esc(r.task)}</td><td>${esc(r.model)}</td><td>${esc(r.strategy)}</td>
      <td>${r.value !== null ? esc(r.metric) + ' ' + fmt(r.value) + (r.ci ? ' <span class=muted>[' + fmt(r.ci[0]) + ', ' + fmt(r.ci[1]) + ']</span>' : '') : (r.message ? '<span class=err>' + esc(r.message) + '</span>' : '–')}</td>
      <td>${dur(r.seconds)}</td><td>${r.report ? `<a href="/runs/${encodeURIComponent(r.name)}/report" target=_blank>report</a> ` : ''}
      <button class="danger delete" data-run="${esc(r.name)}">Delete</button></td></tr>`).join('');
  document.querySelectorAll('#runs th[data-key]').forEach(th => th.onclick = () => { desc = key === th.dataset.key ? !desc : false; key = th.dataset.key; draw(); });
  document.querySelectorAll('.delete').forEach(b => b.onclick = async () => {
    if (!confirm('Delete run ' + b.dataset.run + ' and its folder?')) return;
    try { await api('/api/runs/' + encodeURIComponent(b.dataset.run), {method:'DELETE'}); refresh(); } catch (e) { showError($('#error'), e); } });
  $('#empty').hidden = rows.length > 0;
}
async function refresh() { try { rows = await api('/api/runs'); draw(); } catch (e) { showError($('#error'), e); } }
$('#filter').oninput = draw;
$('#compare').onclick = () => { const p = [...document.querySelectorAll('.pick:checked')].map(x => x.value);
  if (p.length < 2) { showError($('#error'), 'select two or more runs to compare'); return; }
  location.href = '/compare?runs=' + p.map(encodeURIComponent).join(','); };
refresh(); setInterval(() => { if (!document.querySelector('.pick:checked')) refresh(); }, 3000);
"""


def runs(root: str) -> str:
    body = (f"<h1>Runs</h1><p class=muted>run folders under {html.escape(root)}</p><section>"
            "<div class=row><div><input id=filter placeholder='filter: name, task, model, strategy, status'></div>"
            "<div style='flex:0'><button id=compare>Compare selected</button></div></div><div id=error></div>"
            "<table id=runs></table><p id=empty class=muted hidden>No runs yet: <a href='/new'>start one</a>.</p></section>")
    return layout("Runs", "runs", body, RUNS_JS)


LIVE_JS = """
async function refresh() {
  let d; try { d = await api('/api/runs/' + encodeURIComponent(RUN)); } catch (e) { showError($('#error'), e); return; }
  const r = d.run, p = d.progress;
  $('#status').innerHTML = `<span class="badge ${r.status}" id=state>${r.status}</span> ${esc(r.kind)} · ${esc(r.task)} · ${esc(r.model)}${r.strategy ? ' · ' + esc(r.strategy) : ''}` +
    (r.value !== null ? ` · <b id=result>${esc(r.metric)} ${fmt(r.value)}</b>` + (r.ci ? ` [${fmt(r.ci[0])}, ${fmt(r.ci[1])}]` : '') : '') +
    (r.message ? `<div class=error id=failure>${esc(r.message)}</div>` : '');
  const frac = p.epochs ? Math.min(1, p.epoch / p.epochs) : (r.status === 'finished' ? 1 : 0);
  $('#progress').innerHTML = `<div class=bar><div style="width:${(100*frac).toFixed(1)}%"></div></div>
    <p id=numbers>step ${p.step} · epoch ${p.epoch.toFixed(2)}${p.epochs ? ' of ' + p.epochs : ''} · ${p.samples_per_second ? p.samples_per_second.toFixed(1) + ' samples/s' : '– samples/s'} · elapsed ${dur(p.elapsed)}` +
    (r.status === 'running' && p.left !== null ? ` · about ${dur(p.left)} left` : '') + '</p>';
  $('#stages').innerHTML = r.kind === 'auto' ? ['doctor','advise','choose','tune','final'].map(s =>
    `<span class="${p.stages_done.includes(s) ? 'done' : (s === p.stage && r.status === 'running' ? 'now' : '')}">${s}${p.stages_done.includes(s) ? ' ✓' : ''}</span>`).join('') : '';
  const c = d.curves;
  chart($('#loss'), [{name: 'train loss', points: c.train}], 'training loss');
  chart($('#metric'), Object.entries(c.validation).filter(([k]) => k !== 'n').map(([k, v]) => ({name: 'validation ' + k, points: v})), 'validation');
  $('#stop').hidden = r.status !== 'running'; $('#resume').hidden = !d.resumable;
  $('#report').innerHTML = r.report ? `<a href="/runs/${encodeURIComponent(RUN)}/report" target=_blank id=report-link>open report.html</a>` : '';
}
$('#stop').onclick = async () => { try { await post('/api/runs/' + encodeURIComponent(RUN) + '/stop', {}); } catch (e) { showError($('#error'), e); } setTimeout(refresh, 500); };
$('#resume').onclick = async () => { try { await post('/api/runs/' + encodeURIComponent(RUN) + '/resume', {}); } catch (e) { showError($('#error'), e); } setTimeout(refresh, 1000); };
refresh(); setInterval(refresh, 2000);
"""


def live(name: str) -> str:
    body = (f"<h1>{html.escape(name)}</h1><section><div id=status></div><div id=error></div><div id=stages class=stages></div>"
            "<div id=progress></div><p><button class=danger id=stop hidden>Stop (stays resumable)</button> "
            "<button id=resume hidden>Resume</button> <span id=report></span></p></section>"
            "<section class=charts><div id=loss></div><div id=metric></div></section>")
    return layout(name, "runs", body, f"const RUN = {json.dumps(name)};" + LIVE_JS)


COMPARE_JS = """
(async () => {
  const ds = await Promise.all(NAMES.map(n => api('/api/runs/' + encodeURIComponent(n))));
  chart($('#loss'), ds.map((d, i) => ({name: NAMES[i], points: d.curves.train})), 'training loss');
  const m = ds.find(d => d.curves.metric)?.curves.metric;
  chart($('#metric'), ds.map((d, i) => ({name: NAMES[i], points: (m && d.curves.validation[m]) || []})), 'validation ' + (m || ''));
  $('#table').innerHTML = '<tr><th>run</th><th>status</th><th>task</th><th>model</th><th>strategy</th><th>metric</th><th>95% CI</th><th>time</th></tr>' +
    ds.map(d => { const r = d.run; return `<tr><td><a href="/runs/${encodeURIComponent(r.name)}">${esc(r.name)}</a></td><td>${r.status}</td><td>${esc(r.task)}</td><td>${esc(r.model)}</td><td>${esc(r.strategy)}</td>
      <td>${r.value !== null ? esc(r.metric) + ' ' + fmt(r.value) : '–'}</td><td>${r.ci ? '[' + fmt(r.ci[0]) + ', ' + fmt(r.ci[1]) + ']' : '–'}</td><td>${dur(r.seconds)}</td></tr>`; }).join('');
})().catch(e => showError($('#error'), e));
"""


def compare(names: list[str]) -> str:
    body = ("<h1>Compare</h1><div id=error></div><section><table id=table></table></section>"
            "<section class=charts><div id=loss></div><div id=metric></div></section>")
    return layout("Compare", "runs", body, f"const NAMES = {json.dumps(names)};" + COMPARE_JS)


TRY_JS = """
let runs = [];
api('/api/runs').then(rs => { runs = rs.filter(r => r.status === 'finished');
  $('#run').innerHTML = runs.map(r => `<option value="${esc(r.name)}">${esc(r.name)} (${esc(r.task)})</option>`).join('');
  $('#none').hidden = runs.length > 0; pick(); });
function pick() { const r = runs.find(x => x.name === $('#run').value); const media = r && /image|audio|speech/.test(r.task);
  $('#text-box').hidden = !!media; $('#file-box').hidden = !media; }
$('#run').onchange = pick;
$('#go').onclick = async () => {
  showError($('#error')); $('#out').innerHTML = '<p class=muted>predicting…</p>';
  const name = encodeURIComponent($('#run').value);
  try {
    let r;
    if (!$('#file-box').hidden) { const f = $('#upload').files[0]; if (!f) throw new Error('choose an image or audio file');
      const fd = new FormData(); fd.append('file', f); r = await api('/api/predict/' + name, {method:'POST', body:fd}); }
    else r = await post('/api/predict/' + name, {inputs: $('#text').value.split('\\n').filter(x => x.trim())});
    const bars = probs => '<table>' + Object.entries(probs).sort((a, b) => b[1] - a[1]).slice(0, 10)
        .map(([k, v]) => `<tr><td>${esc(k)}</td><td style="width:70%"><div class=bar><div style="width:${(100*v).toFixed(1)}%"></div></div></td><td>${(100*v).toFixed(1)}%</td></tr>`).join('') + '</table>';
    $('#out').innerHTML = r.predictions.map(p => p.labels !== undefined ?  // multi-label: the labels above their thresholds
      `<p class=prediction>${p.labels.length ? p.labels.map(l => `<span class=badge>${esc(l)}</span> ${(100*p.scores[l]).toFixed(1)}%`).join(' · ') : 'no label above its threshold'}</p>` + bars(p.probabilities)
      : p.label !== undefined ?
      `<p class=prediction><b>${esc(p.label)}</b> (${(100*p.score).toFixed(1)}%)</p>` + bars(p.probabilities)
      : p.value !== undefined ? `<p class=prediction><b>${Number(p.value).toPrecision(5)}</b></p>`  // regression
      : p.transcript !== undefined ? `<p class=prediction>“${esc(p.transcript)}”</p>`
      : `<p class=prediction>${p.entities.length ? p.entities.map(e => `<span class=badge>${esc(e.type || e.label)}</span> ${esc(e.text)}`).join(' · ') : 'no entities'}</p>`).join('');
  } catch (e) { showError($('#error'), e); $('#out').innerHTML = ''; }
};
"""


def try_it() -> str:
    body = ("<h1>Try it</h1><section><label for=run>finished run</label><select id=run></select>"
            "<p id=none class=muted hidden>No finished run yet.</p>"
            "<div id=text-box><label for=text>text (one per line)</label><textarea id=text rows=4></textarea></div>"
            "<div id=file-box hidden><label for=upload>image or audio file</label><input type=file id=upload></div>"
            "<p><button id=go>Predict</button></p><div id=error></div><div id=out></div></section>")
    return layout("Try it", "try", body, TRY_JS)
