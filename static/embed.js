/* Relance "Pay an invoice" widget. On the company's page:
     <div data-relance-pay><a href="https://pay.example.com/">Pay an invoice</a></div>
     <script src="https://pay.example.com/embed.js" async></script>
   The link is the plain way in (and stays, opening a new tab); this script puts the portal
   in a frame above it, sized by the portal's messages (from the portal's origin only). */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !window.URL || !window.postMessage) return;
  var portal = new URL(script.src).origin;
  var frames = [];
  function start(box) {
    if (box.getAttribute("data-relance-ready")) return;
    box.setAttribute("data-relance-ready", "1");
    var link = box.querySelector("a[href]");
    var src = new URL("/embed", portal);
    src.searchParams.set("host", window.location.origin);
    var lang = box.getAttribute("data-lang") || document.documentElement.lang;
    if (lang) src.searchParams.set("lang", lang.slice(0, 2));
    var frame = document.createElement("iframe");
    frame.src = src.href;
    frame.title = box.getAttribute("data-title") || (link && link.textContent.trim()) || "Pay an invoice";
    frame.setAttribute("allow", "payment; storage-access");
    frame.style.cssText = "display:block;width:100%;border:0;height:560px;overflow:hidden";
    box.insertBefore(frame, box.firstChild);
    if (link) {
      link.target = "_blank";
      link.rel = "noopener";
    }
    frames.push(frame);
  }
  window.addEventListener("message", function (event) {
    if (event.origin !== portal || !event.data) return;
    for (var i = 0; i < frames.length; i++) {
      var frame = frames[i];
      if (event.source !== frame.contentWindow) continue;
      var height = event.data.height;
      if (event.data.type === "relance:height" && height > 0 && height < 20000) {
        frame.style.height = Math.ceil(height) + "px";
      } else if (event.data.type === "relance:navigated" && frame.getBoundingClientRect().top < 0) {
        frame.scrollIntoView();
      }
    }
  });
  var boxes = document.querySelectorAll("[data-relance-pay]");
  for (var j = 0; j < boxes.length; j++) start(boxes[j]);
})();
