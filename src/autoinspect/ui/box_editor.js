// The review page's box editor: the photo with its regions as SVG rectangles a reviewer draws, moves, resizes
// and deletes with the mouse. Every finished gesture sends the whole list of regions (normalised corners) to
// Python as the state value "boxes"; Python sends it back as data on the next run, so what is drawn and what
// Python holds never drift apart.

const HANDLE = 10; // corner handle side, in displayed pixels
const FONT = 14; // caption size, in displayed pixels
const MIN_SIDE = 0.004; // a drag shorter than this (share of the photo) is a click, not a new box
const stores = new WeakMap(); // parentElement -> what this instance shows between runs

function clamp(value) {
  return Math.min(1, Math.max(0, value));
}

function normalised(box) {
  const [x1, x2] = box.x1 <= box.x2 ? [box.x1, box.x2] : [box.x2, box.x1];
  const [y1, y2] = box.y1 <= box.y2 ? [box.y1, box.y2] : [box.y2, box.y1];
  return { label: box.label, x1: clamp(x1), y1: clamp(y1), x2: clamp(x2), y2: clamp(y2) };
}

function escaped(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function rounded(box) {
  const r = (v) => Math.round(v * 10000) / 10000;
  return { label: box.label, x1: r(box.x1), y1: r(box.y1), x2: r(box.x2), y2: r(box.y2) };
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  const root = parentElement.querySelector(".box-editor");
  const photo = root.querySelector("img");
  const svg = root.querySelector("svg");
  const picker = root.querySelector("select");
  const remove = root.querySelector("button.delete");
  const reset = root.querySelector("button.reset");
  const count = root.querySelector(".count");

  // Python sends back what the editor sent (the state it holds); such an echo, even of an earlier gesture that
  // arrives after a later one, must not reset the boxes or the selection. Anything else is new data (a reset).
  const incoming = JSON.stringify(data.boxes);
  let store = stores.get(parentElement);
  if (!store || (store.received !== incoming && !store.sent.includes(incoming))) {
    store = { received: incoming, sent: [], boxes: data.boxes.map(normalised), selected: null, gesture: null };
    stores.set(parentElement, store);
  }
  if (photo.getAttribute("src") !== data.image) photo.setAttribute("src", data.image);
  if (picker.options.length !== data.classes.length) {
    picker.replaceChildren(...data.classes.map((name) => new Option(name, name)));
  }

  const send = () => {
    const boxes = store.boxes.map(rounded);
    store.sent = [...store.sent.slice(-9), JSON.stringify(boxes)];
    setStateValue("boxes", boxes);
  };
  const point = (event) => {
    const frame = svg.getBoundingClientRect();
    return { x: clamp((event.clientX - frame.left) / frame.width), y: clamp((event.clientY - frame.top) / frame.height) };
  };

  function draw() {
    const width = photo.naturalWidth || 1;
    const height = photo.naturalHeight || 1;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const perPixel = width / Math.max(1, svg.getBoundingClientRect().width); // photo pixels per displayed pixel
    const font = FONT * perPixel;
    const handle = HANDLE * perPixel;
    const shapes = [];
    store.boxes.forEach((box, index) => {
      const colour = data.colours[box.label] || "#888888";
      const label = escaped(box.label);
      const [x, y] = [box.x1 * width, box.y1 * height];
      const [w, h] = [(box.x2 - box.x1) * width, (box.y2 - box.y1) * height];
      const chosen = index === store.selected;
      shapes.push(
        `<rect class="box${chosen ? " selected" : ""}" data-index="${index}" data-label="${label}" ` +
          `x="${x}" y="${y}" width="${w}" height="${h}" stroke="${colour}" fill="${colour}" />`,
        `<text x="${x + 2}" y="${Math.max(font, y - 4)}" font-size="${font}" fill="${colour}">${label}</text>`,
      );
      if (chosen) {
        for (const [cx, cy, corner] of [[x, y, "nw"], [x + w, y, "ne"], [x, y + h, "sw"], [x + w, y + h, "se"]]) {
          shapes.push(
            `<rect class="handle" data-corner="${corner}" x="${cx - handle / 2}" y="${cy - handle / 2}" ` +
              `width="${handle}" height="${handle}" />`,
          );
        }
      }
    });
    svg.innerHTML = shapes.join("");
    remove.disabled = store.selected === null;
    const n = store.boxes.length;
    count.textContent = `${n} region${n === 1 ? "" : "s"}`;
  }

  // The gesture in progress lives in the store, not in this run's closure: a rerun of the page (the echo of an
  // earlier gesture) calls this function again mid-drag, and a closure variable would drop the rest of the drag.
  svg.onpointerdown = (event) => {
    const at = point(event);
    const target = event.target;
    if (target.classList.contains("handle")) {
      const box = store.boxes[store.selected];
      const corner = target.dataset.corner;
      // the corner opposite the grabbed one stays put
      const fixed = { x: corner.includes("w") ? box.x2 : box.x1, y: corner.includes("n") ? box.y2 : box.y1 };
      store.gesture = { kind: "resize", fixed };
    } else if (target.classList.contains("box")) {
      store.selected = Number(target.dataset.index);
      picker.value = store.boxes[store.selected].label;
      store.gesture = { kind: "move", start: at, origin: { ...store.boxes[store.selected] } };
    } else {
      store.boxes.push({ label: picker.value, x1: at.x, y1: at.y, x2: at.x, y2: at.y });
      store.selected = store.boxes.length - 1;
      store.gesture = { kind: "resize", fixed: at, fresh: true };
    }
    svg.setPointerCapture(event.pointerId);
    draw();
  };
  svg.onpointermove = (event) => {
    const gesture = store.gesture;
    if (!gesture) return;
    const at = point(event);
    const box = store.boxes[store.selected];
    if (gesture.kind === "move") {
      const { origin, start } = gesture;
      const dx = Math.min(1 - origin.x2, Math.max(-origin.x1, at.x - start.x));
      const dy = Math.min(1 - origin.y2, Math.max(-origin.y1, at.y - start.y));
      Object.assign(box, { x1: origin.x1 + dx, x2: origin.x2 + dx, y1: origin.y1 + dy, y2: origin.y2 + dy });
    } else {
      Object.assign(box, normalised({ label: box.label, x1: gesture.fixed.x, y1: gesture.fixed.y, x2: at.x, y2: at.y }));
    }
    draw();
  };
  svg.onpointerup = () => {
    const gesture = store.gesture;
    if (!gesture) return;
    store.gesture = null;
    const box = store.boxes[store.selected];
    const changed = gesture.kind !== "move" || box.x1 !== gesture.origin.x1 || box.y1 !== gesture.origin.y1;
    if (gesture.fresh && (box.x2 - box.x1 < MIN_SIDE || box.y2 - box.y1 < MIN_SIDE)) {
      store.boxes.pop(); // a click on the photo: deselect instead of adding a dot
      store.selected = null;
      draw();
      return;
    }
    draw();
    if (changed) send();
  };
  picker.onchange = () => {
    if (store.selected === null) return;
    store.boxes[store.selected].label = picker.value;
    draw();
    send();
  };
  const deleteSelected = () => {
    if (store.selected === null) return;
    store.boxes.splice(store.selected, 1);
    store.selected = null;
    draw();
    send();
  };
  remove.onclick = deleteSelected;
  root.onkeydown = (event) => {
    if (event.key === "Delete" || event.key === "Backspace") deleteSelected();
  };
  reset.onclick = () => {
    store.boxes = data.model.map(normalised);
    store.selected = null;
    draw();
    send();
  };
  photo.onload = draw;
  draw();
}
