/*
 * Encore storefront widget. Add to a page:
 *   <script src="https://encore.example.com/widget.js" data-key="PUBLIC_KEY" async></script>
 *   <div data-encore-placement="home"></div>
 *   <div data-encore-placement="product" data-item-id="SKU-1"></div>
 *   <div data-encore-placement="cart"></div>
 * Optional on the div: data-limit (default 8), data-title, data-currency (default USD),
 * data-link-template and data-image-template ("/p/{item_id}") to use the store's URLs.
 * Optional on the script: data-customer-id with data-customer-token (a signed-in shopper;
 * the token is made by the store's server, see README), data-currency.
 * The widget keeps a first-party visitor id, draws an accessible carousel, and reports
 * view, rec_impression and rec_click events (with the recommendation_id) by sendBeacon.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__encoreWidget) return;
  window.__encoreWidget = true;
  var key = script.getAttribute("data-key") || "";
  var customerId = script.getAttribute("data-customer-id") || null;
  var customerToken = script.getAttribute("data-customer-token") || null;
  var api = new URL(script.src, location.href).origin;
  var COOKIE = "encore_vid";
  var TITLES = { home: "Recommended for you", product: "You may also like", cart: "Goes well with your cart" };

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
  }

  function visitorId() {
    var match = document.cookie.match(/(?:^|;\s*)encore_vid=([^;]+)/);
    var id = match ? decodeURIComponent(match[1]) : null;
    try { id = id || localStorage.getItem(COOKIE); } catch (e) { /* storage blocked */ }
    id = id || newId();
    document.cookie = COOKIE + "=" + encodeURIComponent(id) + "; max-age=31536000; path=/; SameSite=Lax";
    try { localStorage.setItem(COOKIE, id); } catch (e) { /* storage blocked */ }
    return id;
  }

  var visitor = visitorId();

  function send(event) {
    event.event_id = newId();
    event.visitor_id = visitor;
    if (customerId && customerToken) {
      event.customer_id = customerId;
      event.customer_token = customerToken;
    }
    var url = api + "/v1/events?api_key=" + encodeURIComponent(key);
    var body = JSON.stringify(event);
    // text/plain keeps the beacon a simple request: no CORS preflight, survives page exit.
    if (navigator.sendBeacon && navigator.sendBeacon(url, new Blob([body], { type: "text/plain" }))) return;
    fetch(url, { method: "POST", body: body, keepalive: true, headers: { "Content-Type": "text/plain" } });
  }

  function injectStyle() {
    if (document.getElementById("encore-style")) return;
    var style = document.createElement("style");
    style.id = "encore-style";
    style.textContent =
      ".encore{font:inherit;margin:1.5rem 0}.encore h2{font-size:1.2rem;margin:0 0 .5rem}" +
      ".encore-track{display:flex;gap:1rem;overflow-x:auto;scroll-snap-type:x mandatory;list-style:none;margin:0;padding:.25rem}" +
      ".encore-track:focus-visible{outline:2px solid #2563eb}" +
      ".encore-card{flex:0 0 clamp(9rem,40vw,12rem);scroll-snap-align:start;border:1px solid #ddd;border-radius:.5rem;padding:.5rem;background:#fff}" +
      ".encore-card a{color:inherit;text-decoration:none;display:block}.encore-card a:focus-visible{outline:2px solid #2563eb}" +
      ".encore-card img{width:100%;aspect-ratio:1;object-fit:cover;border-radius:.25rem;background:#f3f3f3}" +
      ".encore-title{display:block;margin:.4rem 0 .2rem;font-size:.9rem;line-height:1.2}.encore-price{font-weight:600}" +
      ".encore-nav{display:flex;justify-content:flex-end;gap:.5rem;margin-top:.25rem}" +
      ".encore-nav button{min-width:2.75rem;min-height:2.75rem;border:1px solid #bbb;border-radius:50%;background:#fff;cursor:pointer}";
    document.head.appendChild(style);
  }

  function price(value, currency) {
    if (value === null || value === undefined) return "";
    try { return new Intl.NumberFormat(undefined, { style: "currency", currency: currency }).format(value); }
    catch (e) { return value.toFixed(2); }
  }

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) { node.setAttribute(name, attributes[name]); });
    if (text) node.textContent = text;
    return node;
  }

  // A store may route products its own way: data-link-template="/p/{item_id}".
  function fromTemplate(slot, attribute, itemId) {
    var template = slot.getAttribute(attribute);
    return template ? template.split("{item_id}").join(encodeURIComponent(itemId)) : null;
  }

  function render(slot, answer) {
    var placement = slot.getAttribute("data-encore-placement");
    var currency = slot.getAttribute("data-currency") || script.getAttribute("data-currency") || "USD";
    var heading = slot.getAttribute("data-title") || TITLES[placement] || "Recommended";
    var headingId = "encore-h-" + answer.recommendation_id.slice(0, 12);
    var section = element("section", { "class": "encore", "aria-labelledby": headingId,
                                        "data-recommendation-id": answer.recommendation_id });
    section.appendChild(element("h2", { id: headingId }, heading));
    var track = element("ul", { "class": "encore-track", role: "list", tabindex: "0", "aria-label": heading });
    answer.items.forEach(function (item, position) {
      var card = element("li", { "class": "encore-card", "data-item-id": item.item_id });
      var link = element("a", { href: fromTemplate(slot, "data-link-template", item.item_id) || item.url || "#" });
      var image = fromTemplate(slot, "data-image-template", item.item_id) || item.image_url || "";
      link.appendChild(element("img", { src: image, alt: item.title || item.item_id, loading: "lazy", width: "160", height: "160" }));
      link.appendChild(element("span", { "class": "encore-title" }, item.title || item.item_id));
      link.appendChild(element("span", { "class": "encore-price" }, price(item.price, currency)));
      link.addEventListener("click", function () {
        send({ type: "rec_click", item_id: item.item_id, recommendation_id: answer.recommendation_id,
               properties: { placement: placement, position: position } });
      });
      card.appendChild(link);
      track.appendChild(card);
    });
    var nav = element("div", { "class": "encore-nav" });
    [["Previous products", -1, "\u2039"], ["Next products", 1, "\u203A"]].forEach(function (spec) {
      var button = element("button", { type: "button", "aria-label": spec[0] }, spec[2]);
      button.addEventListener("click", function () { track.scrollBy({ left: spec[1] * track.clientWidth * 0.8, behavior: "smooth" }); });
      nav.appendChild(button);
    });
    section.appendChild(track);
    section.appendChild(nav);
    slot.replaceChildren(section);
    send({ type: "rec_impression", recommendation_id: answer.recommendation_id,
           properties: { placement: placement, items: answer.items.map(function (i) { return i.item_id; }) } });
  }

  function fill(slot) {
    var placement = slot.getAttribute("data-encore-placement");
    var itemId = slot.getAttribute("data-item-id");
    var query = new URLSearchParams({ visitor_id: visitor, placement: placement, limit: slot.getAttribute("data-limit") || "8" });
    if (itemId) query.set("item_id", itemId);
    if (placement === "product" && itemId && !slot.__encoreViewed) {
      slot.__encoreViewed = true;
      send({ type: "view", item_id: itemId });
    }
    return fetch(api + "/v1/recommendations?" + query.toString(), { headers: { "X-API-Key": key } })
      .then(function (response) { if (!response.ok) throw new Error("Encore answered " + response.status); return response.json(); })
      .then(function (answer) { if (answer.items.length) render(slot, answer); })
      .catch(function (error) { if (window.console) console.warn("encore widget:", error.message); });
  }

  function start() {
    injectStyle();
    Array.prototype.forEach.call(document.querySelectorAll("[data-encore-placement]"), fill);
  }

  window.encore = { refresh: start, visitorId: function () { return visitor; } };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
