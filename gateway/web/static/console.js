// Progressive enhancement only: every page works without this file.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // "Select all" checkboxes tick every enabled checkbox named by data-target in the same form.
  for (const all of document.querySelectorAll("input.select-all")) {
    all.addEventListener("change", () => {
      const boxes = all.form.querySelectorAll(`input[type=checkbox][name="${all.dataset.target}"]:not(:disabled)`);
      for (const box of boxes) box.checked = all.checked;
    });
  }
  // Forms marked data-confirm ask before an irreversible action.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
});
