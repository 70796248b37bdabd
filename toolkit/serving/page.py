"""The web page at `/`: lists the served models and lets a person try one.

Plain HTML + JavaScript that talks to the same public REST API as every other client (`/v1/models`,
`:predict` with `{"b64": ...}` or text instances). What it shows follows the export's task
(`assets.extra/toolkit.json`, summarised by `Servable.describe`):

- image classification: the top labels with score bars;
- object detection: the boxes (`box_format`, default `xyxy`, in the input image's pixels) drawn on the image,
  one row per detection;
- semantic segmentation: the class mask overlaid (the export's `palette`, else the page's colours), the share
  of each class;
- text classification: a text box, the top labels with score bars; token classification: a tag per token;
- text embedding: the nearest corpus texts (`neighbor_texts`) with their cosine similarity, not the vector;
- VAE: the reconstruction decoded from mu beside the input, mu and the reconstruction error.

Choosing another model clears the previous input and result.
"""

PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>toolkit serving</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font-family:system-ui,sans-serif;margin:24px;max-width:960px;color:#222;background:#fff}
 h1{font-size:22px} table{border-collapse:collapse} td,th{padding:4px 10px;text-align:left;border-bottom:1px solid #ddd}
 .panel{border:1px solid #ccc;border-radius:6px;padding:12px;margin:12px 0}
 .bar{height:14px;background:#1f6fd1;display:inline-block;vertical-align:middle}
 .err{color:#b00020;font-weight:bold} canvas{max-width:480px;border:1px solid #ccc;image-rendering:pixelated}
 .muted{color:#666;font-size:13px} textarea{width:100%;height:80px}
</style></head>
<body>
<h1>toolkit serving</h1>
<p class="muted">A TensorFlow Serving work-alike. REST: <code>/v1/models/NAME[:predict]</code>,
metrics: <a href="/monitoring/prometheus/metrics">/monitoring/prometheus/metrics</a>.</p>
<div class="panel" id="auth" style="display:none">This server needs a token:
 <input id="token" type="password" size="30"> <button id="save-token">use token</button></div>
<div class="panel"><h2 style="font-size:17px;margin-top:0">Models</h2>
 <table id="models"><thead><tr><th>name</th><th>version</th><th>task</th><th>state</th><th>labels</th></tr></thead>
 <tbody></tbody></table></div>
<div class="panel" id="try"><h2 style="font-size:17px;margin-top:0">Try a model</h2>
 <label>model <select id="model"></select></label> <span id="info" class="muted"></span>
 <div id="image-input" style="margin-top:10px">image: <input id="file" type="file" accept="image/*"></div>
 <div id="text-input" style="margin-top:10px;display:none"><textarea id="text" placeholder="type text"></textarea>
  <button id="send-text">predict</button></div>
 <div id="status" class="muted" style="margin-top:8px"></div>
 <div style="display:flex;gap:24px;margin-top:10px;flex-wrap:wrap;align-items:flex-start">
  <figure id="input-figure" style="margin:0;display:none"><canvas id="canvas" width="0" height="0"></canvas>
   <figcaption class="muted">input</figcaption></figure>
  <figure id="recon-figure" style="margin:0;display:none"><canvas id="recon" width="0" height="0"></canvas>
   <figcaption class="muted">reconstruction (decoded from mu)</figcaption></figure>
  <table id="result"></table></div>
</div>
<script>
const $ = (id) => document.getElementById(id);
let MODELS = {};
const COLORS = [[31,111,209],[214,39,40],[44,160,44],[255,127,14],[148,103,189],[140,86,75],[227,119,194],[23,190,207]];
function headers() {
  const h = {"Content-Type": "application/json"}, t = localStorage.getItem("toolkit-token");
  if (t) h["Authorization"] = "Bearer " + t;
  return h;
}
async function api(path, body) {
  const r = await fetch(path, body === undefined ? {headers: headers()} :
                        {method: "POST", headers: headers(), body: JSON.stringify(body)});
  const data = await r.json().catch(() => ({error: "HTTP " + r.status}));
  if (r.status === 401) $("auth").style.display = "block";
  if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
  return data;
}
function cell(row, text) { const td = document.createElement("td"); td.textContent = text; row.appendChild(td); return td; }
async function loadModels() {
  let data;
  try { data = await api("/v1/models"); } catch (e) { $("status").innerHTML = '<span class="err"></span>'; $("status").firstChild.textContent = e.message; return; }
  const body = $("models").querySelector("tbody"); body.innerHTML = ""; $("model").innerHTML = "";
  MODELS = {};
  for (const m of data.models) {
    MODELS[m.name] = m;
    const row = document.createElement("tr");
    cell(row, m.name); cell(row, m.version ?? "-"); cell(row, m.task || "-");
    cell(row, m.versions.map(v => v.version + ":" + v.state + (v.error ? " (" + v.error.slice(0, 80) + ")" : "")).join(", "));
    cell(row, (m.labels || []).slice(0, 10).join(", ") + ((m.labels || []).length > 10 ? ", ..." : ""));
    body.appendChild(row);
    if (m.version !== null) { const o = document.createElement("option"); o.value = o.textContent = m.name; $("model").appendChild(o); }
  }
  selectModel();
}
function inputOf(m) {
  const sig = (m.signatures || {})["serving_default"]; if (!sig) return null;
  const names = Object.keys(sig.inputs); return names.length === 1 ? {name: names[0], ...sig.inputs[names[0]]} : null;
}
function isText(m) { return /text|sentiment|language/.test(m.task || "") || (inputOf(m) && /text|sentence/.test(inputOf(m).name)); }
let REQUEST = 0;  // bumped on every model switch and request: an answer to an older one is dropped
function clearOutput() {
  REQUEST++; $("result").innerHTML = ""; $("status").textContent = ""; $("file").value = "";
  for (const [canvas, figure] of [["canvas", "input-figure"], ["recon", "recon-figure"]]) {
    const c = $(canvas); c.width = 0; c.height = 0; c.style.width = ""; $(figure).style.display = "none"; }
}
function selectModel() {
  clearOutput();
  const m = MODELS[$("model").value]; if (!m) return;
  const extra = m.corpus_size ? `, corpus of ${m.corpus_size} texts` : m.latent_dim ? `, latent dim ${m.latent_dim}` : "";
  const labels = (m.labels || []).length ? `, ${m.labels.length} labels` : "";
  $("info").textContent = `version ${m.version}, task ${m.task}${labels}${extra}`;
  $("text-input").style.display = isText(m) ? "block" : "none";
  $("image-input").style.display = isText(m) ? "none" : "block";
}
async function predict(instance, image) {
  const m = MODELS[$("model").value], id = ++REQUEST;
  $("status").textContent = "predicting ..."; $("result").innerHTML = "";
  try {
    const data = await api(`/v1/models/${encodeURIComponent(m.name)}:predict`, {instances: [instance]});
    if (id !== REQUEST) return;
    const p = data.predictions[0];
    show(m, typeof p === "object" && !Array.isArray(p) ? p : {outputs: p}, image);
    $("status").textContent = `done: ${m.name} version ${m.version}`;
  } catch (e) { if (id !== REQUEST) return;
    $("status").innerHTML = '<span class="err"></span>'; $("status").firstChild.textContent = "error: " + e.message; }
}
function topK(m, p) {
  let scores = p.scores ?? p.probabilities ?? p.outputs;
  if (!Array.isArray(scores) || Array.isArray(scores[0])) return [];
  const labels = m.labels || scores.map((_, i) => String(i));
  return scores.map((s, i) => [labels[i] ?? String(i), s]).sort((a, b) => b[1] - a[1]).slice(0, 5);
}
function header(...names) { $("result").innerHTML = "<tr>" + names.map(n => "<th>" + n + "</th>").join("") + "</tr>"; }
function scored(label, score, kind) { const r = document.createElement("tr"); r.className = kind || "prediction";
  cell(r, label).className = "label"; cell(r, Number(score).toFixed(4)).className = "score";
  const b = cell(r, ""); const bar = document.createElement("span"); bar.className = "bar";
  bar.style.width = Math.round(200 * Math.max(0, Math.min(1, score))) + "px"; b.appendChild(bar); $("result").appendChild(r); }
function fact(name, value) { const r = document.createElement("tr"); r.className = "fact";
  cell(r, name).className = "name"; cell(r, value).className = "value"; $("result").appendChild(r); }
const fmt = (v, k) => v.slice(0, k).map(x => Number(x).toFixed(3)).join(", ") + (v.length > k ? `, ... (${v.length} values)` : "");
function show(m, p, image) {
  const task = m.task || "";
  if (Array.isArray(p.neighbor_texts) || task === "text_embedding") return showNeighbours(p);
  if (task === "vae" || (p.mu && p.reconstruction)) return showVae(m, p, image);
  if (Array.isArray(p.tokens)) return showTokens(p);
  header("label", "score", "");
  const boxes = p.boxes || p.detection_boxes;
  if (Array.isArray(boxes)) {
    const n = p.num_detections ?? boxes.length, scores = p.scores || [], labels = p.labels || [];
    for (let i = 0; i < n; i++) { scored(labels[i] ?? String((p.classes || [])[i]), scores[i] ?? 1);  // swatch = box colour
      $("result").lastChild.firstChild.style.borderLeft = `6px solid rgb(${COLORS[i % COLORS.length]})`; }
    if (!n) fact("no detections", "none above the export's score threshold");
    if (image) drawBoxes(image, boxes.slice(0, n), labels, m.box_format || "xyxy");
    return;
  }
  const mask = p.mask || p.masks || p.segmentation;
  if (Array.isArray(mask) && Array.isArray(mask[0])) {
    const counts = {}; let total = 0;
    mask.flat(2).forEach(v => { if (v >= 0) { counts[v] = (counts[v] || 0) + 1; total++; } });  // -1: batch padding
    Object.entries(counts).sort((a, b) => b[1] - a[1]).forEach(([c, k]) => scored((m.labels || [])[c] ?? c, k / total, "class-share"));
    if (image) drawMask(image, mask, m.palette || COLORS);
    return;
  }
  const top = topK(m, p);
  if (top.length) top.forEach(([l, s]) => scored(l, s));
  else if (p.labels !== undefined) scored(p.labels, 1);
  else for (const [k, v] of Object.entries(p)) fact(k, Array.isArray(v) ? fmt(v.flat(3), 8) : String(v));
}
function showNeighbours(p) {
  const texts = p.neighbor_texts, sims = p.similarities || [];
  if (!Array.isArray(texts)) {  // an embedder exported without a corpus: say what came back, not the numbers
    header("output", ""); const e = p.embeddings || p.outputs || [];
    fact("embedding", `${e.length} dimensions (L2 norm ${Math.hypot(...e).toFixed(3)}); no corpus to search in this export`);
    return;
  }
  header("nearest text", "similarity", "");
  texts.forEach((t, i) => scored(t, sims[i] ?? 0, "neighbor"));
}
function showTokens(p) {
  header("token", "tag");
  p.tokens.forEach((t, i) => { if (t !== "") fact(t, (p.labels || [])[i] ?? String((p.classes || [])[i])); });
}
function showVae(m, p, image) {
  header("output", "value");
  const rec = p.reconstruction || p.images;
  if (Array.isArray(rec)) drawPixels($("recon"), rec, $("canvas").style.width);
  $("recon-figure").style.display = Array.isArray(rec) ? "block" : "none";
  if (p.mu) fact("mu", fmt(p.mu, 8));
  if (p.log_var) fact("log_var", fmt(p.log_var, 8));
  if (p.reconstruction_error !== undefined) fact("reconstruction error (MSE on [0, 1])", Number(p.reconstruction_error).toFixed(4));
}
function drawPixels(c, pixels, width) {  // [H][W][C] values in [0, 255] (C = 1 or 3) -> the canvas
  const h = pixels.length, w = pixels[0].length; c.width = w; c.height = h; c.style.width = width || "224px";
  const ctx = c.getContext("2d"), out = ctx.createImageData(w, h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    let v = pixels[y][x]; if (!Array.isArray(v)) v = [v]; const k = 4 * (y * w + x);
    for (let j = 0; j < 3; j++) out.data[k + j] = Math.round(Math.max(0, Math.min(255, v[v.length === 1 ? 0 : j])));
    out.data[k + 3] = 255; }
  ctx.putImageData(out, 0, 0);
}
function drawImage(image) { const c = $("canvas"); c.width = image.width; c.height = image.height;
  $("input-figure").style.display = "block";
  c.style.width = Math.min(480, Math.max(image.width, 224)) + "px";
  const ctx = c.getContext("2d"); ctx.drawImage(image, 0, 0); return ctx; }
function drawBoxes(image, boxes, labels, format) {
  const ctx = drawImage(image); const norm = boxes.flat().every(v => v <= 1.5);
  const sx = norm ? image.width : 1, sy = norm ? image.height : 1;
  boxes.forEach((b, i) => { let [y0, x0, y1, x1] = b; if (format === "xyxy") [x0, y0, x1, y1] = b;
    const c = COLORS[i % COLORS.length]; ctx.strokeStyle = `rgb(${c})`; ctx.lineWidth = Math.max(2, image.width / 150);
    ctx.strokeRect(x0 * sx, y0 * sy, (x1 - x0) * sx, (y1 - y0) * sy);
    ctx.fillStyle = `rgb(${c})`; ctx.fillText(labels[i] ?? "", x0 * sx + 2, y0 * sy + 10); });
}
function drawMask(image, mask, palette) {
  const ctx = drawImage(image); const h = mask.length, w = mask[0].length;
  const over = ctx.getImageData(0, 0, image.width, image.height);
  for (let y = 0; y < image.height; y++) for (let x = 0; x < image.width; x++) {
    let v = mask[Math.floor(y * h / image.height)][Math.floor(x * w / image.width)]; if (Array.isArray(v)) v = v[0];
    if (!(v > 0)) continue; const c = palette[v % palette.length], k = 4 * (y * image.width + x);
    for (let j = 0; j < 3; j++) over.data[k + j] = Math.round(0.5 * over.data[k + j] + 0.5 * c[j]); }
  ctx.putImageData(over, 0, 0);
}
$("file").addEventListener("change", () => {
  const file = $("file").files[0]; if (!file) return;
  const reader = new FileReader();
  const id = REQUEST;
  reader.onload = () => { const url = reader.result, image = new Image();
    image.onload = () => { if (id !== REQUEST) return; drawImage(image); predict({b64: url.slice(url.indexOf(",") + 1)}, image); };
    image.onerror = () => predict({b64: url.slice(url.indexOf(",") + 1)}, null);
    image.src = url; };
  reader.readAsDataURL(file);
});
$("send-text").addEventListener("click", () => predict($("text").value, null));
$("model").addEventListener("change", selectModel);
$("save-token").addEventListener("click", () => { localStorage.setItem("toolkit-token", $("token").value); loadModels(); });
loadModels();
</script></body></html>
"""
