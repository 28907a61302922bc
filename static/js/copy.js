// Copy buttons for the bank transfer details. Optional: without JavaScript the buttons stay
// hidden and the details, plain text shown in full, can be selected and copied by hand.
// A button copies its value's data-copy-value (the IBAN and the RF reference without the
// spaces that group them for reading), or else its text.
(function () {
  "use strict";
  function select(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  function copy(element, button) {
    var text = element.getAttribute("data-copy-value") || element.textContent.trim();
    var done = function () {
      button.setAttribute("data-copied", "true");
      window.setTimeout(function () { button.removeAttribute("data-copied"); }, 2000);
    };
    select(element);
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {});
    } else {
      // Without the clipboard API (plain http): copy a spaceless copy through a hidden field.
      var field = document.createElement("textarea");
      field.value = text;
      field.setAttribute("readonly", "");
      field.style.position = "fixed";
      field.style.opacity = "0";
      document.body.appendChild(field);
      field.select();
      var copied = document.execCommand && document.execCommand("copy");
      document.body.removeChild(field);
      select(element);
      if (copied) { done(); }
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    var buttons = document.querySelectorAll("button[data-copy]");
    Array.prototype.forEach.call(buttons, function (button) {
      var element = document.getElementById(button.getAttribute("data-copy"));
      if (!element) { return; }
      button.hidden = false;
      button.addEventListener("click", function () { copy(element, button); });
    });
  });
})();
