// dockyard ui: copy buttons, open the release named in the address, and follow changes without a reload.
(function () {
  "use strict";
  var body = document.body;

  function copy(text, button) {
    function done() { button.classList.add("done"); button.textContent = "copied"; setTimeout(function () { button.classList.remove("done"); button.textContent = "copy"; }, 1500); }
    if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(text).then(done, function () {}); return; }
    var area = document.createElement("textarea");
    area.value = text; document.body.appendChild(area); area.select();
    try { document.execCommand("copy"); done(); } catch (e) { /* the text stays selectable */ }
    document.body.removeChild(area);
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (button) { copy(button.getAttribute("data-copy"), button); }
  });

  function openFromHash() {
    if (!location.hash) { return; }
    var target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (target && target.tagName === "DETAILS") { target.open = true; target.scrollIntoView({block: "center"}); }
  }
  window.addEventListener("hashchange", openFromHash);
  openFromHash();

  if (body.getAttribute("data-live") !== "on") { return; }
  var status = document.getElementById("live-status");
  var version = body.getAttribute("data-version");

  function replaceMain(html) {
    var page = new DOMParser().parseFromString(html, "text/html");
    var fresh = page.querySelector("main");
    if (!fresh) { return; }
    var open = Array.prototype.map.call(document.querySelectorAll("details[open]"), function (d) { return d.id; });
    document.querySelector("main").replaceWith(fresh);
    open.forEach(function (id) { var d = id && document.getElementById(id); if (d) { d.open = true; } });
    version = fresh.getAttribute("data-version");
    body.setAttribute("data-version", version);
  }

  function tick() {
    fetch("api/version.json", {cache: "no-store", credentials: "same-origin"})
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
      .then(function (data) {
        if (data.version === version) { return null; }
        return fetch(location.pathname, {cache: "no-store", credentials: "same-origin"})
          .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.text(); })
          .then(replaceMain);
      })
      .then(function () {
        status.textContent = "live · checked " + new Date().toLocaleTimeString();
        status.className = "live on";
      })
      .catch(function () {
        status.textContent = "live · the server does not answer; retrying";
        status.className = "live on down";
      })
      .then(function () { setTimeout(tick, 2000); });
  }
  setTimeout(tick, 2000);
})();
