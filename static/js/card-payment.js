// Card payment with Stripe's Payment Element. Card details go from the browser to Stripe;
// the server only created the PaymentIntent. After confirmation Stripe returns the debtor
// to the same page, which shows the real state.
(function () {
  "use strict";
  function start() {
    var form = document.getElementById("card-form");
    if (!form) { return; }
    var errorBox = document.getElementById("card-error");
    var submit = document.getElementById("card-submit");
    var needsScript = document.getElementById("card-needs-js");
    if (needsScript) { needsScript.hidden = true; }
    function showError(message) {
      errorBox.textContent = message;
      errorBox.hidden = false;
    }
    if (typeof window.Stripe !== "function") {
      showError(form.getAttribute("data-unavailable"));
      return;
    }
    var stripe = window.Stripe(form.getAttribute("data-publishable-key"), {
      locale: form.getAttribute("data-locale") || "auto"
    });
    var elements = stripe.elements({ clientSecret: form.getAttribute("data-client-secret") });
    elements.create("payment").mount("#payment-element");
    submit.hidden = false;
    var busy = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (busy) { return; }  // one confirmation at a time: a double click pays once
      if (typeof stripe.confirmPayment !== "function") {
        showError(form.getAttribute("data-unavailable"));
        return;
      }
      busy = true;
      submit.disabled = true;
      errorBox.hidden = true;
      stripe.confirmPayment({
        elements: elements,
        confirmParams: { return_url: form.getAttribute("data-return-url") }
      }).then(function (result) {
        // Only reached when Stripe does not redirect: an error to show, the form stays.
        if (result && result.error) { showError(result.error.message || form.getAttribute("data-unavailable")); }
        busy = false;
        submit.disabled = false;
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
