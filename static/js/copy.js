// Copy buttons for the bank transfer details. Optional: without JavaScript the buttons stay
// hidden and the read-only fields can be selected and copied by hand.
(function () {
  "use strict";
  function copy(input, button) {
    input.focus();
    input.select();
    var done = function () {
      button.setAttribute("data-copied", "true");
      window.setTimeout(function () { button.removeAttribute("data-copied"); }, 2000);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () {});
    } else if (document.execCommand && document.execCommand("copy")) {
      done();
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    var buttons = document.querySelectorAll("button[data-copy]");
    Array.prototype.forEach.call(buttons, function (button) {
      var input = document.getElementById(button.getAttribute("data-copy"));
      if (!input) { return; }
      button.hidden = false;
      button.addEventListener("click", function () { copy(input, button); });
    });
  });
})();
