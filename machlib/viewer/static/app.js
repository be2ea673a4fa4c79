// machlib viewer: shows ../avatar.glb with orbit controls, a hair toggle and emotion/blendshape sliders.
//
// URL parameters (for scripting and tests):
//   ?hair=0                                   hide the node named "hair"
//   ?expression=happiness=0.8,surprise=0.3    emotion intensities in [0, 1]
//   ?morph=jawOpen:1,eyeBlinkLeft:0.5         individual ARKit blendshape weights in [0, 1]
//   ?yaw=90                                   orbit the camera by degrees about the vertical axis
//   ?panel=0                                  hide the side panel
// When the avatar is shown with these settings, document.title becomes "machlib viewer: ready"
// and document.body.dataset.ready is "1"; on failure the title is "machlib viewer: error".
import * as THREE from 'three';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';

const BACKGROUND = 0x3a3e44;  // = --bg in style.css
const $ = (id) => document.getElementById(id);
const statusEl = $('status');
const noticeEl = $('notice');
const params = new URLSearchParams(window.location.search);
const notices = [];

function clamp01(x) { return Math.min(1, Math.max(0, x)); }

function fail(err) {
  const msg = (err && err.message) ? err.message : String(err);
  console.error(err);
  statusEl.textContent = 'Could not show the avatar: ' + msg;
  statusEl.classList.add('error');
  statusEl.hidden = false;
  document.title = 'machlib viewer: error';
  document.body.dataset.error = msg;
}

function notice(msg) {
  notices.push(msg);
  noticeEl.textContent = notices.join(' · ');
  noticeEl.hidden = false;
}

// "a=0.5,b" or "a:0.5,b" -> Map (a name without a value means 1).
function parsePairs(text, what) {
  const out = new Map();
  for (const part of (text || '').split(',')) {
    const item = part.trim();
    if (!item || item.toLowerCase() === 'neutral') continue;
    const m = item.match(/^([A-Za-z_][\w]*)\s*(?:[=:]\s*(.*))?$/);
    const value = m ? (m[2] === undefined ? 1 : Number(m[2])) : NaN;
    if (!m || !Number.isFinite(value)) { notice(`ignored ${what} "${item}"`); continue; }
    out.set(m[1], clamp01(value));
  }
  return out;
}

function flag(name, fallback) {
  if (!params.has(name)) return fallback;
  return !['0', 'false', 'off', 'no'].includes(params.get(name).toLowerCase());
}

// ---------------------------------------------------------------- scene

const canvas = $('view');
if (!flag('panel', true)) document.body.classList.add('no-panel');
const renderer = new THREE.WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true });
renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
renderer.outputColorSpace = THREE.SRGBColorSpace;
renderer.toneMapping = THREE.NeutralToneMapping;
renderer.toneMappingExposure = 1.0;

const scene = new THREE.Scene();
scene.background = new THREE.Color(BACKGROUND);
// Studio lighting from plain lights (an environment map's PMREM pre-filtering takes seconds on
// software WebGL): sky/ground fill, a warm key from the upper front right, a cool fill and a rim.
scene.add(new THREE.HemisphereLight(0xf2f4ff, 0x51463f, 1.4));
const keyLight = new THREE.DirectionalLight(0xfff4e8, 2.2);
keyLight.position.set(0.7, 0.9, 1.2);
const fillLight = new THREE.DirectionalLight(0xdfe8ff, 0.7);
fillLight.position.set(-1.0, 0.2, 0.8);
const rimLight = new THREE.DirectionalLight(0xcfe0ff, 1.0);
rimLight.position.set(-0.6, 0.8, -1.0);
scene.add(keyLight, fillLight, rimLight);

const camera = new THREE.PerspectiveCamera(30, 1, 0.01, 100);
camera.position.set(0, 0, 1);
const controls = new OrbitControls(camera, canvas);
controls.enableDamping = true;
controls.dampingFactor = 0.12;

let framePending = false;
let afterFrame = null;  // called once after the next rendered frame
function requestRender() {
  if (framePending) return;
  framePending = true;
  requestAnimationFrame(frame);
}
function frame() {
  framePending = false;
  if (controls.update()) requestRender();  // damping still moving
  renderer.render(scene, camera);
  if (afterFrame) { const f = afterFrame; afterFrame = null; requestAnimationFrame(f); }
}
controls.addEventListener('change', requestRender);

function resize() {
  const w = Math.max(1, canvas.clientWidth), h = Math.max(1, canvas.clientHeight);
  renderer.setSize(w, h, false);
  camera.aspect = w / h;
  camera.updateProjectionMatrix();
  requestRender();
}
new ResizeObserver(resize).observe(canvas);
resize();

// ---------------------------------------------------------------- avatar

let blendshapes = [];          // the 52 ARKit names
let emotionNames = [];
let emotionBasis = [];         // emotionNames.length rows of 52 weights
const emotionW = new Map();    // emotion -> intensity
const morphW = new Map();      // blendshape -> extra weight
let morphMeshes = [];
let hairNodes = [];
const sliders = new Map();     // "emotion:x" / "morph:x" -> {input, output}

function applyMorphs() {
  const w = new Float32Array(blendshapes.length);
  emotionNames.forEach((e, k) => {
    const s = emotionW.get(e) || 0;
    if (s) for (let i = 0; i < w.length; i++) w[i] += s * emotionBasis[k][i];
  });
  const value = new Map();
  blendshapes.forEach((b, i) => value.set(b, clamp01(w[i] + (morphW.get(b) || 0))));
  for (const mesh of morphMeshes) {
    for (const [name, idx] of Object.entries(mesh.morphTargetDictionary)) {
      if (value.has(name)) mesh.morphTargetInfluences[idx] = value.get(name);
    }
  }
  requestRender();
}

function setHair(visible) {
  for (const n of hairNodes) n.visible = visible;
  $('hair').checked = visible;
  requestRender();
}

function addSlider(parent, kind, name, store) {
  const id = `${kind}-${name}`;
  const label = document.createElement('label');
  label.htmlFor = id;
  label.textContent = name;
  label.title = name;
  const input = document.createElement('input');
  Object.assign(input, { type: 'range', id, min: 0, max: 1, step: 0.01, value: store.get(name) || 0 });
  const output = document.createElement('output');
  output.htmlFor = id;
  const show = () => { output.textContent = Number(input.value).toFixed(2); };
  show();
  input.addEventListener('input', () => { store.set(name, Number(input.value)); show(); applyMorphs(); });
  parent.append(label, input, output);
  sliders.set(`${kind}:${name}`, { input, show });
}

function syncSliders() {
  for (const [k, s] of sliders) {
    const [kind, name] = k.split(':');
    s.input.value = (kind === 'emotion' ? emotionW : morphW).get(name) || 0;
    s.show();
  }
}

function frameCamera(model) {
  // Orbit around the head: the morphing mesh with most vertices (the face), else the whole model.
  let head = null, most = -1;
  for (const m of morphMeshes) {
    const n = m.geometry.attributes.position.count;
    if ('jawOpen' in m.morphTargetDictionary && n > most) { head = m; most = n; }
  }
  if (!head) model.traverse((o) => { if (!head && o.isMesh && /head/i.test(o.name)) head = o; });
  const box = new THREE.Box3().setFromObject(head || model);
  if (box.isEmpty()) box.setFromObject(model);
  const sphere = box.getBoundingSphere(new THREE.Sphere());
  const r = Math.max(sphere.radius, 1e-3);
  const fov = THREE.MathUtils.degToRad(camera.fov);
  const fit = Math.min(fov, 2 * Math.atan(Math.tan(fov / 2) * camera.aspect));
  const dist = 1.05 * r / Math.sin(fit / 2);
  const yaw = THREE.MathUtils.degToRad(Number(params.get('yaw')) || 0);
  controls.target.copy(sphere.center);
  camera.position.set(sphere.center.x + dist * Math.sin(yaw), sphere.center.y, sphere.center.z + dist * Math.cos(yaw));
  camera.near = dist / 100;
  camera.far = dist * 100;
  camera.updateProjectionMatrix();
  controls.minDistance = r * 0.5;
  controls.maxDistance = dist * 10;
  controls.saveState();
  controls.update();
}

async function checkDownload() {
  const link = $('download');
  try {
    const res = await fetch(link.getAttribute('href'), { method: 'HEAD', cache: 'no-store' });
    link.hidden = !res.ok;
  } catch (e) {
    link.hidden = true;
  }
}

async function main() {
  const charRes = await fetch('character.json');
  if (!charRes.ok) throw new Error(`character.json: HTTP ${charRes.status}`);
  const character = await charRes.json();
  blendshapes = character.blendshapes;
  emotionNames = Object.keys(character.emotions);
  emotionBasis = emotionNames.map((e) => character.emotions[e]);

  for (const [name, v] of parsePairs(params.get('expression'), 'emotion')) {
    const e = name.toLowerCase();
    if (emotionNames.includes(e)) emotionW.set(e, v); else notice(`unknown emotion "${name}"`);
  }
  for (const [name, v] of parsePairs(params.get('morph'), 'blendshape')) {
    if (blendshapes.includes(name)) morphW.set(name, v); else notice(`unknown blendshape "${name}"`);
  }
  for (const e of emotionNames) addSlider($('emotions'), 'emotion', e, emotionW);
  for (const b of blendshapes) addSlider($('blendshapes'), 'morph', b, morphW);
  if (morphW.size) $('blendshapes-box').open = true;
  checkDownload();

  let gltf;
  try {
    gltf = await new GLTFLoader().loadAsync('../avatar.glb');
  } catch (err) {
    throw new Error(`avatar.glb: ${err && err.message ? err.message : err}`);
  }
  const model = gltf.scene || gltf.scenes[0];
  if (!model) throw new Error('avatar.glb has no scene');
  scene.add(model);
  model.traverse((o) => {
    if (o.name === 'hair') hairNodes.push(o);
    if ((o.isMesh || o.isLine) && o.morphTargetDictionary && o.morphTargetInfluences) morphMeshes.push(o);
  });
  model.updateMatrixWorld(true);
  frameCamera(model);

  const hairBox = $('hair');
  hairBox.disabled = hairNodes.length === 0;
  hairBox.addEventListener('change', () => setHair(hairBox.checked));
  setHair(hairNodes.length > 0 && flag('hair', true));
  $('reset').addEventListener('click', () => {
    emotionW.clear();
    morphW.clear();
    syncSliders();
    controls.reset();
    setHair(hairNodes.length > 0);
    applyMorphs();
  });
  applyMorphs();
  statusEl.hidden = true;
  afterFrame = () => {
    document.body.dataset.ready = '1';
    document.title = 'machlib viewer: ready';
  };
  requestRender();
}

main().catch(fail);
