// Copy buttons: <button data-copy="ID" hidden> copies the text of the element
// with that id. A file, not inline script: the dashboard's CSP allows only
// scripts from the service itself. Without JavaScript the buttons stay hidden
// and the values can still be selected and copied by hand.
"use strict";

(() => {
  // Announces the outcome to screen readers (a live region, not a second
  // "status" next to the page's own flash messages).
  const status = document.createElement("span");
  status.className = "visually-hidden";
  status.setAttribute("aria-live", "polite");
  document.body.append(status);

  async function write(text, source) {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return;
    }
    // Plain http on a public name has no clipboard API: select and copy.
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    if (!document.execCommand("copy")) {
      throw new Error("the browser refused to copy");
    }
  }

  function say(button, label, message) {
    button.textContent = label;
    status.textContent = message;
  }

  for (const button of document.querySelectorAll("button[data-copy]")) {
    const source = document.getElementById(button.dataset.copy);
    if (!source) continue;
    const label = button.textContent;
    let timer;
    button.hidden = false;
    button.addEventListener("click", async () => {
      clearTimeout(timer);
      try {
        await write(source.textContent.trim(), source);
        say(button, "Copied", "Copied to the clipboard.");
      } catch {
        say(button, "Not copied", "Copying failed: select the value and copy it by hand.");
      }
      timer = setTimeout(() => say(button, label, ""), 2500);
    });
  }
})();
