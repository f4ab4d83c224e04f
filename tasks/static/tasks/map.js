/* The field-work map: open work orders (at their location, or where their vehicle is now) and
   the field workers' last positions, from one JSON call, refreshed every 30 seconds. */
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("map-config").textContent);
  const labels = JSON.parse(document.getElementById("task-map-labels").textContent || "{}") || {};
  const t = (key) => labels[key] || key;
  const el = document.getElementById("task-map");
  const status = document.getElementById("map-status");
  const KIND_COLORS = { install: "#1a9850", repair: "#fdae61", covert_visit: "#2166ac", repossession: "#d73027" };
  const map = CarloanGeo.createMap(el, cfg, { preferCanvas: true });
  const layers = { orders: L.layerGroup().addTo(map), workers: L.layerGroup().addTo(map) };
  let fitted = false;

  function where(lat, lon) { return CarloanGeo.display(lat, lon, cfg.crs); }
  function text(value) { const span = document.createElement("span"); span.textContent = value == null ? "" : String(value); return span.innerHTML; }

  function orderPopup(o) {
    const link = el.dataset.admin ? '<a href="' + el.dataset.admin.replace("/0/", "/" + o.id + "/") + '">' + text(t("open in admin")) + "</a>" : "";
    return "<b>#" + o.id + " " + text(o.kind_display) + "</b> · " + text(o.status_display) +
      "<br>" + text(o.plate) + (o.address ? "<br>" + text(o.address) : "") +
      "<br>" + text(t("assignee")) + ": " + text(o.assignee || t("unassigned")) +
      (o.due_at ? "<br>" + text(t("due")) + ": " + text(o.due_at.slice(0, 16).replace("T", " ")) + (o.overdue ? ' <b class="late">' + text(t("overdue")) + "</b>" : "") : "") +
      (o.at_vehicle ? "<br><i>" + text(t("at vehicle")) + "</i>" : "") + (link ? "<br>" + link : "");
  }

  function workerPopup(w) {
    return "<b>" + text(w.name) + "</b> (" + text(w.kind_display) + ")<br>" +
      text(w.on_duty ? t("on duty") : t("off duty")) + (w.fresh ? "" : " · " + text(t("stale"))) +
      "<br>" + text(t("last position")) + ": " + text((w.at || "").slice(0, 16).replace("T", " "));
  }

  function draw(data) {
    layers.orders.clearLayers();
    layers.workers.clearLayers();
    const bounds = [];
    let shown = 0;
    for (const o of data.orders) {
      if (o.lat == null) continue;
      const p = where(o.lat, o.lon);
      bounds.push(p);
      shown += 1;
      L.circleMarker(p, { radius: 8, color: o.overdue ? "#000" : "#fff", weight: o.overdue ? 3 : 1, fillColor: KIND_COLORS[o.kind] || "#999", fillOpacity: 0.9 })
        .bindPopup(orderPopup(o)).addTo(layers.orders);
    }
    for (const w of data.workers) {
      const p = where(w.lat, w.lon);
      bounds.push(p);
      const icon = L.divIcon({ className: "worker-pin" + (w.on_duty && w.fresh ? "" : " away"), html: text((w.name || "?").slice(0, 1)), iconSize: [22, 22] });
      L.marker(p, { icon: icon, title: w.name }).bindPopup(workerPopup(w)).addTo(layers.workers);
    }
    document.getElementById("n-orders").textContent = shown + (data.orders.length > shown ? " (+" + (data.orders.length - shown) + " " + t("no position") + ")" : "");
    document.getElementById("n-workers").textContent = String(data.workers.length);
    if (!fitted && bounds.length) { map.fitBounds(bounds, { padding: [30, 30], maxZoom: 15 }); fitted = true; }
    status.textContent = t("updated") + " " + new Date().toLocaleTimeString();
    document.body.dataset.orders = String(data.orders.length);
    document.body.dataset.workers = String(data.workers.length);
  }

  async function load() {
    try {
      const res = await fetch(el.dataset.source, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!res.ok) throw new Error(res.statusText);
      draw(await res.json());
    } catch (e) {
      status.textContent = t("failed");
    }
  }

  document.querySelectorAll("[data-layer]").forEach((box) => box.addEventListener("change", () => {
    const layer = layers[box.dataset.layer];
    if (box.checked) layer.addTo(map); else map.removeLayer(layer);
  }));
  load();
  setInterval(load, 30000);
})();
