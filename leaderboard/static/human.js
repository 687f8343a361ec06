// CoViP human evaluation: keyboard shortcuts for the rating form. Each radio button names its key in data-key;
// pressing it chooses that answer. Enter saves the item once every criterion is answered (the browser reports a
// missing answer otherwise). Keys typed into a text field are left alone.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form.rating");
  if (!form) return;
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.target.matches("input[type=text], textarea")) return;
    if (event.key === "Enter") {
      event.preventDefault();
      form.requestSubmit();
      return;
    }
    const radio = form.querySelector(`input[data-key="${CSS.escape(event.key.toLowerCase())}"]`);
    if (radio) {
      radio.checked = true;
      radio.focus();
    }
  });
});
