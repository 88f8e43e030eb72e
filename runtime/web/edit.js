// toonsync kiosk page: the "Edit avatar" panel. Each change makes a restyled copy of the avatar on the server
// (POST /api/avatar/{id}/style: a new avatar id, the original never changes); the panel previews it and "Use this
// avatar" streams it. Loaded before app.js, which calls window.toonsyncEditor with what the panel needs from it.
"use strict";
window.toonsyncEditor = ({ $, canvas, state, setStatus, post, useAvatar, showAdjust }) => {
  // The controls start from the avatar's attributes; only those the visitor changed are sent, always to the
  // avatar the panel was opened on, so each answer stands alone and the latest one is what is shown.
  const EDIT_DEBOUNCE_MS = 250;
  const editForm = $("edit-form"), editImg = $("edit-preview");
  // the editor's state, readable by tests: the avatar edited, the latest restyled id and the one shown
  const edit = (window.toonsyncEdit = {
    base: null, id: null, shown: null, attributes: null, changed: {}, requests: 0, answers: 0, pending: null,
  });
  let editSeq = 0, editTimer = null, choices = null, accepted = {};  // accepted: the changes of the preview shown

  function showEdit(on) {
    if (on) showAdjust(false);
    else if ($("edit").hidden) return;  // not open (the adjust view may be showing instead of the canvas)
    $("edit").hidden = !on;
    canvas.hidden = on;
    if (editTimer) { clearTimeout(editTimer); editTimer = null; }
    editSeq += 1;  // an answer still on its way is ignored
    if (!on) edit.base = null;
  }

  function fillSelect(el, values, current) {
    el.replaceChildren(...values.map((v) => new Option(v.replace(/_/g, " "), v)));
    el.value = current;
  }

  // the controls set from an attributes object (GET /api/avatar/{id}/attributes)
  function setControls(a, choices) {
    fillSelect($("edit-hair-style"), choices.hair_style, a.hair_style);
    fillSelect($("edit-hair-length"), choices.hair_length, a.hair_length);
    fillSelect($("edit-facial-hair"), choices.facial_hair, a.facial_hair);
    fillSelect($("edit-glasses"), choices.glasses, a.glasses ? a.glasses_shape : "none");
    for (const key of ["hair_colour", "skin_colour", "eye_colour", "facial_hair_colour", "clothing_colour",
                       "fringe", "part", "volume", "brow_weight"]) {
      editForm.querySelector(`[data-key="${key}"]:not([type=checkbox])`).value = a[key];
    }
    $("edit-headwear").checked = a.headwear !== "none";
    $("edit-headwear-colour").value = a.headwear !== "none" ? a.headwear : "#3a66c4";
  }

  async function openEdit() {
    const aid = state.avatar;
    let j;
    try {
      const r = await fetch(`/api/avatar/${encodeURIComponent(aid)}/attributes`);
      j = await r.json();
      if (!r.ok) { setStatus(j.message || `cannot edit this avatar (${r.status})`, "error"); return; }
    } catch (e) {
      setStatus(`cannot edit this avatar: ${e.message || e}`, "error");
      return;
    }
    if (!j.editable) {
      setStatus("this avatar is animated from its own drawing and keeps its look; edit an avatar made from a photo", "warn");
      return;
    }
    showEdit(true);
    Object.assign(edit, { base: aid, id: null, shown: null, attributes: j.attributes, changed: {}, requests: 0,
                          answers: 0, pending: null });
    choices = j.choices; accepted = {};
    setControls(j.attributes, choices);
    editImg.onload = () => { if (edit.base === aid && !edit.id) edit.shown = aid; };
    editImg.src = `/api/avatar/${encodeURIComponent(aid)}/preview.png`;
    setStatus("editing the avatar: the preview follows your changes", "");
  }

  function controlValue(el) {
    if (el.dataset.key === "headwear") return $("edit-headwear").checked ? $("edit-headwear-colour").value : "none";
    return el.type === "range" ? Number(el.value) : el.value;
  }

  function onEditInput(e) {
    const el = e.target, key = el && el.dataset.key;
    if (!key || !edit.base) return;
    if (el === $("edit-headwear-colour")) $("edit-headwear").checked = true;  // picking a cap colour puts one on
    if (key === "hair_style") delete edit.changed.hair_length;  // a new hairstyle comes with its usual length
    edit.changed[key] = controlValue(el);
    if (editTimer) clearTimeout(editTimer);
    editTimer = setTimeout(() => { edit.pending = restyle(); }, EDIT_DEBOUNCE_MS);
  }

  async function restyle() {
    editTimer = null;
    const seq = ++editSeq, base = edit.base;
    edit.requests += 1;
    const sent = { ...edit.changed };
    const j = await post(`/api/avatar/${encodeURIComponent(base)}/style`, JSON.stringify(sent), "editing");
    if (seq !== editSeq || edit.base !== base) return;  // a later change or a closed panel wins
    if (!j) {  // refused (the status line says why): the controls go back to the preview shown
      edit.changed = { ...accepted };
      setControls(edit.attributes, choices);
      return;
    }
    accepted = sent;
    Object.assign(edit, { id: j.avatar_id, attributes: j.attributes, answers: edit.answers + 1 });
    if (!("hair_length" in edit.changed)) $("edit-hair-length").value = j.attributes.hair_length;
    const img = new Image();  // swapped in once loaded: the preview never flashes empty
    img.onload = () => { if (seq === editSeq) { editImg.src = img.src; edit.shown = j.avatar_id; } };
    img.src = j.preview;
    setStatus(`preview: ${j.describe}`, "");
  }

  async function useEdit() {
    if (!edit.base) return;
    $("edit-use").disabled = true;
    try {
      if (editTimer) { clearTimeout(editTimer); edit.pending = restyle(); }  // a change still waiting: made now
      if (edit.pending) await edit.pending;
      const id = edit.id;
      if (!id) { showEdit(false); setStatus("nothing was changed", ""); return; }
      useAvatar({ avatar: id, preview: `/api/avatar/${encodeURIComponent(id)}/preview.png`, warnings: [] });
    } finally {
      $("edit-use").disabled = false;
    }
  }

  $("edit-avatar").addEventListener("click", openEdit);
  editForm.addEventListener("input", onEditInput);  // sliders and colours while they move
  editForm.addEventListener("change", onEditInput);  // selects and checkboxes (some browsers send no input event)
  editForm.addEventListener("submit", (e) => e.preventDefault());
  $("edit-use").addEventListener("click", useEdit);
  $("edit-cancel").addEventListener("click", () => { showEdit(false); setStatus("ready", ""); });
  return { show: showEdit, open: openEdit };
};
