// The score histogram and range slider (Streamlit custom component v2, no build step).
//
// Python sends, once per prediction (or per segment definition), cumulative counts per whole
// score 0..100 (see core/predictions/distribution.py ScoreSteps and core/segments/score_sizing.py).
// Every pointer move recomputes the figures, the bars and the label here, in the browser, with
// the same subtractions as core; releasing the thumb (or a key, or a tier button) commits the
// selection to Python with setStateValue("selection", ...).
//
// The functions above `export default` are pure: tests/browser/test_live_drag.py runs them in
// Chromium for every whole-score range and compares them with core.

const BUCKET_WIDTH = 5;

// Index spans [start, stop) of the sorted scores a selection covers, with their expected sums.
function selectionSpans(steps, tiers, selection) {
  const point = (counts, sums, k) => ({ users: counts[k], expected: sums ? sums[k] : 0 });
  const lowOf = (k) => point(steps.below, steps.expected_below, k);
  const highOf = (k) => point(steps.at_most, steps.expected_at_most, k);
  if (selection.categories.length) {
    // Tiers are [low, high), High includes 100, like the likelihood_category filter.
    return tiers
      .filter((tier) => selection.categories.includes(tier.name))
      .map((tier) => [lowOf(tier.low), tier.high >= 100 ? highOf(100) : lowOf(tier.high)]);
  }
  return [[lowOf(selection.min), highOf(selection.max)]];
}

// The Predictions panel's figures; the same operations, in the same order, as
// core.predictions.distribution.ScoreDistribution.summary.
function predictionFigures(steps, tiers, selection) {
  const spans = selectionSpans(steps, tiers, selection);
  let selected = 0;
  let captured = 0;
  for (const [start, stop] of spans) selected += stop.users - start.users;
  for (const [start, stop] of spans) captured += stop.expected - start.expected;
  const audience = steps.at_most[100];
  const total = steps.expected_at_most[100];
  const baseRate = audience ? total / audience : 0;
  const rate = selected ? captured / selected : 0;
  return {
    audience,
    selected,
    selected_share: audience ? selected / audience : 0,
    expected_total: total,
    expected_captured: captured,
    expected_captured_share: total ? captured / total : 0,
    not_expected_targeted: selected - captured,
    conversion_rate: rate,
    base_rate: baseRate,
    lift: baseRate ? rate / baseRate : 0,
  };
}

// The segment's size with its score filter at [min, max] (core.segments.score_sizing.ScoreFilterSizing.size).
function segmentSize(sizing, selection) {
  const added = sizing.adds_at_most[selection.max] - sizing.adds_below[selection.min];
  const removed = sizing.removes_at_most[selection.max] - sizing.removes_below[selection.min];
  return sizing.base + added - removed;
}

// 20 bars of 5 points: users in each, and how many of them the selection counts.
function bars(steps, tiers, selection) {
  const spans = selectionSpans(steps, tiers, selection);
  const rows = [];
  for (let low = 0; low < 100; low += BUCKET_WIDTH) {
    const high = low + BUCKET_WIDTH;
    const start = steps.below[low];
    const stop = high >= 100 ? steps.at_most[100] : steps.below[high];
    let counted = 0;
    for (const [from, to] of spans) counted += Math.max(0, Math.min(stop, to.users) - Math.max(start, from.users));
    rows.push({ low, high, users: stop - start, counted });
  }
  return rows;
}

// The tiers a range stands for exactly, if any: a range ending at 100 from a tier's start.
function categoriesOfRange(tiers, selection) {
  if (selection.max !== 100) return [];
  const first = tiers.findIndex((tier) => tier.low === selection.min);
  return first < 0 ? [] : tiers.slice(first).map((tier) => tier.name);
}

// A tier button pressed: tiers stay one contiguous run, so the range and the tiers always agree.
function toggleTier(tiers, categories, name) {
  const names = tiers.map((tier) => tier.name);
  const at = names.indexOf(name);
  const pressed = names.map((n) => categories.includes(n));
  const first = pressed.indexOf(true);
  const last = pressed.lastIndexOf(true);
  if (!pressed[at]) {
    if (first < 0) return [name];
    return names.slice(Math.min(first, at), Math.max(last, at) + 1);
  }
  if (at === first || at === last) return names.slice(first, last + 1).filter((n) => n !== name);
  return [name]; // the middle of a run: keep just that one
}

function rangeOfTiers(tiers, categories) {
  const chosen = tiers.filter((tier) => categories.includes(tier.name));
  return { min: Math.min(...chosen.map((t) => t.low)), max: Math.max(...chosen.map((t) => t.high)) };
}

// Python's format(x, ",.Nf"): round half to even on exact ties (JavaScript rounds them up).
function fixed(value, digits) {
  const scale = 10 ** digits;
  const scaled = value * scale;
  let rounded = Math.round(scaled);
  if (digits === 0 && Math.abs(scaled - Math.trunc(scaled)) === 0.5) rounded = 2 * Math.round(scaled / 2);
  return (rounded / scale).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function percent(value) {
  return `${fixed(value * 100, 1)}%`;
}

function selectionLabel(selection) {
  if (selection.categories.length) return `Selection: ${selection.categories.join(", ")} likelihood`;
  return `Selection: scores ${selection.min}–${selection.max}`;
}

function sameSelection(a, b) {
  return !!a && !!b && a.min === b.min && a.max === b.max && a.categories.join() === b.categories.join();
}

// ---- the widget ------------------------------------------------------------------------------

function element(tag, className, parent, attributes = {}) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (parent) parent.appendChild(node);
  return node;
}

function build(root) {
  const ui = { root };
  ui.tierRow = element("div", "tiers", root, { role: "group", "aria-label": "Likelihood category" });
  ui.label = element("div", "label", root, { "data-testid": "score-slider-label", "aria-live": "polite" });
  const chart = element("div", "chart", root);
  ui.bars = element("div", "bars", chart);
  ui.barNodes = [];
  for (let i = 0; i < 100 / BUCKET_WIDTH; i += 1) {
    const bar = element("div", "bar", ui.bars, { "data-testid": "score-bar" });
    bar.style.left = `${i * BUCKET_WIDTH}%`;
    const whole = element("div", "whole", bar);
    const counted = element("div", "counted", bar);
    const count = element("div", "count", bar);
    ui.barNodes.push({ bar, whole, counted, count });
  }
  ui.tierMarks = element("div", "tier-marks", chart);
  ui.track = element("div", "track", root);
  ui.fill = element("div", "fill", ui.track);
  ui.thumbs = ["min", "max"].map((end) =>
    element("div", `thumb ${end}`, ui.track, {
      role: "slider",
      tabindex: "0",
      "aria-valuemin": "0",
      "aria-valuemax": "100",
      "aria-orientation": "horizontal",
      "data-end": end,
    }),
  );
  const ticks = element("div", "ticks", root, { "aria-hidden": "true" });
  for (let v = 0; v <= 100; v += 10) element("span", "", ticks).style.left = `${v}%`;
  [...ticks.children].forEach((tick, i) => {
    tick.textContent = String(i * 10);
  });
  element("div", "axis-title", root).textContent = "Likelihood score";
  ui.scaleNote = element("div", "scale-note", root);
  ui.figures = element("div", "figures", root, { "aria-live": "polite" });
  return ui;
}

function figureBox(parent, testid, title, value, note) {
  const box = element("div", "figure", parent, { "data-testid": testid });
  element("div", "figure-title", box).textContent = title;
  element("div", "figure-value", box).textContent = value;
  if (note !== undefined) element("div", "figure-note", box).textContent = note;
  return box;
}

function drawFigures(ui, data, selection) {
  ui.figures.replaceChildren();
  if (data.mode === "segment") {
    const size = segmentSize(data.sizing, selection);
    figureBox(ui.figures, "score-slider-segment-size", "Segment with this range", `${fixed(size, 0)} users`);
    return;
  }
  const f = predictionFigures(data.steps, data.tiers, selection);
  figureBox(
    ui.figures,
    "figure-selected",
    "Users selected",
    fixed(f.selected, 0),
    `${percent(f.selected_share)} of the ${fixed(f.audience, 0)} users in the audience`,
  );
  const captured = figureBox(
    ui.figures,
    "figure-captured",
    "Expected to perform",
    fixed(f.expected_captured, 0),
    `${percent(f.expected_captured_share)} of all ${fixed(f.expected_total, 0)} expected performers`,
  );
  const meter = element("div", "meter", captured, { role: "presentation" });
  element("div", "meter-fill", meter).style.width = `${Math.min(1, f.expected_captured_share) * 100}%`;
  figureBox(
    ui.figures,
    "figure-not-expected",
    "Not expected to perform",
    fixed(f.not_expected_targeted, 0),
    "selected users who are expected not to perform",
  );
  figureBox(
    ui.figures,
    "figure-rate",
    "Expected conversion rate",
    percent(f.conversion_rate),
    `${fixed(f.lift, 1)}× targeting at random (${percent(f.base_rate)})`,
  );
}

function barHeight(users, tallest, log) {
  if (users <= 0) return 0;
  if (!log) return users / tallest;
  const floor = Math.log10(0.5); // from half a user, so one user still shows
  return (Math.log10(users) - floor) / (Math.log10(Math.max(tallest, 10)) + 0.25 - floor);
}

// "auto": a log scale when the tallest bar is over `log_ratio` times the tallest bar the committed
// selection counts users in (pages/components/score_slider.py readable_scale, the same rule). It is
// decided on the committed selection, so the scale does not flip under a moving thumb.
function logScale(data) {
  if (data.log_scale !== "auto") return data.log_scale;
  const rows = bars(data.steps, data.tiers, data.selection);
  const tallest = Math.max(0, ...rows.map((r) => r.users));
  const selected = Math.max(0, ...rows.filter((r) => r.counted).map((r) => r.users));
  return selected > 0 && tallest > data.log_ratio * selected;
}

function draw(ui, data, selection) {
  const rows = bars(data.steps, data.tiers, selection);
  const log = logScale(data);
  const tallest = Math.max(1, ...rows.map((r) => r.users));
  rows.forEach((row, i) => {
    const { bar, whole, counted, count } = ui.barNodes[i];
    const tier = data.tiers.filter((t) => t.low <= row.low).pop();
    const colour = tier.colour;
    whole.style.height = `${barHeight(row.users, tallest, log) * 100}%`;
    whole.style.background = colour;
    counted.style.height = `${barHeight(row.counted, tallest, log) * 100}%`;
    counted.style.background = colour;
    count.textContent = row.users ? row.users.toLocaleString("en-US") : "";
    count.style.bottom = `${barHeight(row.users, tallest, log) * 100}%`;
    const state = row.counted === 0 ? "out" : row.counted === row.users ? "in" : "partial";
    bar.dataset.state = state;
    bar.title =
      `Score ${row.low}–${row.high} (${tier.name}): ${row.users.toLocaleString("en-US")} users` +
      (state === "partial" ? `, ${row.counted.toLocaleString("en-US")} of them selected` : "");
  });
  ui.scaleNote.textContent = log ? "Users (log scale)" : "";
  ui.label.textContent = data.mode === "segment" ? `Scores ${selection.min}–${selection.max}` : selectionLabel(selection);
  for (const button of ui.tierRow.children) {
    button.setAttribute("aria-pressed", String(selection.categories.includes(button.dataset.tier)));
  }
  const [low, high] = ui.thumbs;
  low.style.left = `${selection.min}%`;
  high.style.left = `${selection.max}%`;
  ui.fill.style.left = `${selection.min}%`;
  ui.fill.style.width = `${selection.max - selection.min}%`;
  for (const [thumb, value, name] of [
    [low, selection.min, "lowest"],
    [high, selection.max, "highest"],
  ]) {
    thumb.setAttribute("aria-valuenow", String(value));
    thumb.setAttribute("aria-valuetext", `${name} score ${value}`);
    thumb.setAttribute("aria-label", `${data.label}: ${name} score`);
  }
  drawFigures(ui, data, selection);
}

function drawTiers(ui, data) {
  // Built once per set of tiers: a rerun must not swap a button under a click or a keyboard focus.
  const shape = JSON.stringify([data.tiers, data.tier_buttons]);
  if (ui.tierShape === shape) return;
  ui.tierShape = shape;
  ui.tierRow.replaceChildren();
  ui.tierMarks.replaceChildren();
  for (const tier of data.tiers) {
    const mark = element("div", "tier-name", ui.tierMarks);
    mark.textContent = tier.name;
    mark.style.left = `${(tier.low + tier.high) / 2}%`;
    mark.style.color = tier.colour;
    if (tier.low > 0) element("div", "tier-edge", ui.tierMarks).style.left = `${tier.low}%`;
    if (!data.tier_buttons) continue;
    const button = element("button", "tier", ui.tierRow, { type: "button", "data-tier": tier.name });
    button.textContent = tier.name;
    button.style.setProperty("--tier-colour", tier.colour);
  }
  ui.tierRow.hidden = !data.tier_buttons;
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  const root = parentElement.querySelector(".score-slider");
  let ui = root.__scoreSlider;
  if (!ui) {
    ui = build(root);
    root.__scoreSlider = ui;
    wire(ui);
  }
  ui.setStateValue = setStateValue;
  ui.data = data;
  // A rerun echoes what was committed; while a commit is on its way, an older echo must not
  // pull the thumbs back.
  if (!ui.dragging && (!ui.sent || sameSelection(ui.sent, data.selection))) {
    ui.sent = null;
    ui.selection = { ...data.selection, categories: [...data.selection.categories] };
  }
  drawTiers(ui, data);
  draw(ui, data, ui.selection);
}

function commit(ui) {
  ui.sent = { ...ui.selection, categories: [...ui.selection.categories] };
  ui.setStateValue("selection", ui.sent);
}

function moveTo(ui, end, value) {
  const s = ui.selection;
  const v = Math.max(0, Math.min(100, Math.round(value)));
  const next = end === "min" ? { min: Math.min(v, s.max), max: s.max } : { min: s.min, max: Math.max(v, s.min) };
  // A hand-set range is a tier only when it is exactly one (e.g. 75–100 is High).
  next.categories = ui.data.tier_buttons ? categoriesOfRange(ui.data.tiers, next) : [];
  ui.selection = next;
  draw(ui, ui.data, next);
}

function wire(ui) {
  const valueAt = (clientX) => {
    const box = ui.track.getBoundingClientRect();
    return ((clientX - box.left) / box.width) * 100;
  };
  const start = (event, end) => {
    event.preventDefault();
    ui.dragging = end;
    ui.track.setPointerCapture(event.pointerId);
    ui.thumbs[end === "min" ? 0 : 1].focus();
    moveTo(ui, end, valueAt(event.clientX));
  };
  ui.track.addEventListener("pointerdown", (event) => {
    const thumb = event.target.closest?.(".thumb");
    if (thumb) return start(event, thumb.dataset.end);
    const value = valueAt(event.clientX);
    const s = ui.selection;
    start(event, Math.abs(value - s.min) <= Math.abs(value - s.max) && value <= s.max ? "min" : "max");
  });
  ui.track.addEventListener("pointermove", (event) => {
    if (ui.dragging) moveTo(ui, ui.dragging, valueAt(event.clientX));
  });
  const release = (event) => {
    if (!ui.dragging) return;
    ui.dragging = null;
    if (ui.track.hasPointerCapture(event.pointerId)) ui.track.releasePointerCapture(event.pointerId);
    commit(ui);
  };
  ui.track.addEventListener("pointerup", release);
  ui.track.addEventListener("pointercancel", release);
  for (const thumb of ui.thumbs) {
    thumb.addEventListener("keydown", (event) => {
      const end = thumb.dataset.end;
      const now = end === "min" ? ui.selection.min : ui.selection.max;
      const moves = {
        ArrowLeft: now - 1,
        ArrowDown: now - 1,
        ArrowRight: now + 1,
        ArrowUp: now + 1,
        PageDown: now - 10,
        PageUp: now + 10,
        Home: end === "min" ? 0 : ui.selection.min,
        End: end === "min" ? ui.selection.max : 100,
      };
      if (!(event.key in moves)) return;
      event.preventDefault();
      moveTo(ui, end, moves[event.key]);
      commit(ui);
    });
  }
  ui.tierRow.addEventListener("click", (event) => {
    const button = event.target.closest?.("button[data-tier]");
    if (!button) return;
    const categories = toggleTier(ui.data.tiers, ui.selection.categories, button.dataset.tier);
    const range = categories.length ? rangeOfTiers(ui.data.tiers, categories) : ui.selection;
    ui.selection = { min: range.min, max: range.max, categories };
    draw(ui, ui.data, ui.selection);
    commit(ui);
  });
}
