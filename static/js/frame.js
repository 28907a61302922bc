// The portal's page inside the widget (static/embed.js on the company's website): report
// the page's height to the host page only (data-host-origin, an allowed site checked by
// the server), put focus on the new page after a navigation the debtor made inside the
// frame, and offer the Storage Access API when the browser kept no cookie in the frame.
(function () {
  "use strict";
  var body = document.body;
  var host = body.getAttribute("data-host-origin");
  if (!host || window.parent === window) return;
  var last = -1;
  function report() {
    var height = Math.ceil(body.getBoundingClientRect().height);
    if (height !== last) {
      last = height;
      window.parent.postMessage({ type: "relance:height", height: height }, host);
    }
  }
  if (window.ResizeObserver) new ResizeObserver(report).observe(body);
  window.addEventListener("load", report);
  report();
  // A page loaded while the frame has focus follows a click or a form in the frame:
  // move focus to its content, and let the host scroll the frame's top into view.
  if (document.hasFocus()) {
    var main = document.getElementById("main");
    if (main) main.focus();
    window.parent.postMessage({ type: "relance:navigated" }, host);
  }
  var button = document.getElementById("storage-access");
  if (button && document.requestStorageAccess) {
    button.hidden = false;
    button.addEventListener("click", function () {
      document.requestStorageAccess().then(
        function () { window.location.assign(button.getAttribute("data-resume")); },
        function () {
          var refused = document.getElementById("storage-access-refused");
          if (refused) refused.hidden = false;
        }
      );
    });
  }
})();
